"""Copies the Swift build's libQuantKitC.so into the package (build it first:
`swift build -c release --product QuantKitC` in the repository root), or $QUANTKIT_LIBRARY."""
import os
import pathlib
import shutil

from setuptools import setup
from setuptools.command.build_py import build_py

HERE = pathlib.Path(__file__).resolve().parent


class BuildWithLibrary(build_py):
    def run(self):
        source = pathlib.Path(os.environ.get("QUANTKIT_LIBRARY") or HERE.parent / ".build" / "release" / "libQuantKitC.so")
        if not source.exists():
            raise SystemExit(f"{source} not found: run `swift build -c release --product QuantKitC` in the repository first")
        super().run()
        target = pathlib.Path(self.build_lib) / "quantkit" / "libQuantKitC.so"
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(source, target)


setup(cmdclass={"build_py": BuildWithLibrary})
