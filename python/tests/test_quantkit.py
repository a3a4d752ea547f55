"""The Python package against the command line's bytes and independent numpy references."""
import hashlib
import json
import os
import pathlib
import struct
import subprocess

import numpy as np
import pytest

import quantkit

REPO = pathlib.Path(__file__).resolve().parents[2]
CLI = os.environ.get("QUANTKIT_BIN", str(REPO / ".build" / "release" / "quantkit"))
FIXTURE = os.environ.get("QUANTKIT_FIXTURE_DIR", os.path.expanduser("~/.cache/quantkit/smollm2-135m"))


def layer(out=64, n=256, tokens=1024, seed=0):
    """A weight and activations with a few loud input channels (where GPTQ and AWQ help)."""
    rng = np.random.default_rng(seed)
    w = (rng.standard_normal((out, n)) * 0.05).astype(np.float32)
    x = rng.standard_normal((tokens, n)).astype(np.float32)
    x[:, 3::16] *= 10
    return w, x


def cli_layer(tmp_path, w, x, *args):
    """Runs `quantkit layer` on (w, x) and returns its tensors and JSON line."""
    quantkit.write_safetensors(tmp_path / "in.safetensors", {"weight": w, "inputs": x})
    out = tmp_path / f"cli{len(list(tmp_path.iterdir()))}.safetensors"
    line = subprocess.run([CLI, "layer", "--input", str(tmp_path / "in.safetensors"), "--out", str(out), *args],
                          check=True, capture_output=True, text=True).stdout
    return quantkit.read_safetensors(out), json.loads(line)


@pytest.mark.parametrize("method", ["rtn", "gptq", "awq", "awq-gptq"])
def test_defaults_and_bytes_equal_the_command_line(tmp_path, method):
    w, x = layer()
    mine = quantkit.quantize_layer(w, x, method=method)
    theirs, info = cli_layer(tmp_path, w, x, "--method", method)
    # Same recommended settings in both, with no option given.
    assert (mine.format, mine.sym, mine.bits, mine.group_size) == (info["format"], info["symmetric"], info["bits"], info["group_size"])
    assert mine.options["act_order"] == info["act_order"]
    names = set(mine.tensors)
    if mine.awq_scales is not None:
        names.add("awq_scales")
        np.testing.assert_array_equal(theirs["awq_scales"], mine.awq_scales)
    assert names == set(theirs)
    for name, array in mine.tensors.items():
        assert array.dtype == theirs[name].dtype and array.shape == theirs[name].shape, name
        assert array.tobytes() == theirs[name].tobytes(), name
    assert mine.relative_error == pytest.approx(info["relative_error"], rel=1e-12)


def test_recommended_settings_follow_each_method():
    assert quantkit.recommended_options("gptq")["sym"] and quantkit.recommended_options("gptq")["act_order"]
    assert not quantkit.recommended_options("awq")["sym"] and not quantkit.recommended_options("awq")["act_order"]
    w, x = layer()
    assert quantkit.quantize_layer(w, x, method="awq").format == "awq"
    assert quantkit.quantize_layer(w, x).format == "gptq"
    assert quantkit.quantize_layer(w, x, sym=False).format == "gptq-v2"


def numpy_gptq_v1_dequantize(t, bits=4):
    """GPTQ v1 layout decoded with numpy alone (the published layout: qweight int32 [in·bits/32,
    out], codes of consecutive input rows in rising bit positions; qzeros [groups, out·bits/32]
    holding zero − 1; scales fp16 [groups, out]; g_idx [in])."""
    assert bits in (2, 4, 8)
    per = 32 // bits
    qweight = t["qweight"].view(np.uint32)
    n_in = qweight.shape[0] * per
    codes = np.zeros((n_in, qweight.shape[1]), dtype=np.int64)
    for k in range(per):
        codes[k::per] = (qweight >> (bits * k)) & ((1 << bits) - 1)
    qzeros = t["qzeros"].view(np.uint32)
    zeros = np.zeros((qzeros.shape[0], qzeros.shape[1] * per), dtype=np.int64)
    for k in range(per):
        zeros[:, k::per] = (qzeros >> (bits * k)) & ((1 << bits) - 1)
    zeros += 1
    scales = t["scales"].astype(np.float32)
    g = t["g_idx"].astype(np.int64)
    return (scales[g] * (codes - zeros[g]).astype(np.float32)).T, codes.T


def test_unpack_equals_a_numpy_decoder_and_the_dequantized_weight():
    w, x = layer(seed=1)
    q = quantkit.quantize_layer(w, x, method="gptq", bits=4, group_size=64)
    reference, codes = numpy_gptq_v1_dequantize(q.tensors)
    u = quantkit.unpack(q.tensors, "gptq", bits=4, group_size=64, sym=True)
    np.testing.assert_array_equal(u.codes, codes.astype(np.uint8))
    np.testing.assert_allclose(u.dequantized, reference, rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(q.dequantized, reference, rtol=1e-6, atol=1e-7)
    # AWQ: the packed weight is W·diag(s); the effective one divides the scales back out.
    a = quantkit.quantize_layer(w, x, method="awq")
    ua = quantkit.unpack(a.tensors, a.format, bits=a.bits, group_size=a.group_size, sym=a.sym)
    np.testing.assert_allclose(ua.dequantized / a.awq_scales, a.dequantized, rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("format", ["gptq", "gptq-v2", "compressed-tensors"])
def test_pack_of_unpacked_codes_gives_the_same_bytes(format):
    w, x = layer(seed=4)
    q = quantkit.quantize_layer(w, x, group_size=64, format=format, sym=format == "gptq")
    u = quantkit.unpack(q.tensors, format, bits=4, group_size=64, sym=q.sym)
    # Grids from the stored tensors: scales as fp16 → float32, zeros decoded by unpack's dequantization.
    scales = q.tensors["scales"].astype(np.float32) if "scales" in q.tensors else q.tensors["weight_scale"].T.astype(np.float32)
    groups = scales.shape[0]
    # zero = code − value/scale for any element of the group; take the first column of each group.
    zeros = np.rint(u.codes[:, ::64].T - u.dequantized[:, ::64].T / scales).astype(np.uint8)
    again = quantkit.pack(u.codes, scales, zeros, None, format=format, bits=4, group_size=64, sym=q.sym)
    assert set(again) == set(q.tensors)
    for name in q.tensors:
        assert again[name].tobytes() == q.tensors[name].tobytes(), name
    assert groups == 4


def test_relative_error_is_the_output_error_numpy_measures():
    w, x = layer(seed=2)
    for method in ["gptq", "awq", "awq-gptq", "rtn"]:
        q = quantkit.quantize_layer(w, x, method=method)
        y, yq = x.astype(np.float64) @ w.T.astype(np.float64), x.astype(np.float64) @ q.dequantized.T.astype(np.float64)
        expected = np.sum((y - yq) ** 2) / np.sum(y ** 2)
        assert q.relative_error == pytest.approx(expected, rel=1e-3), method
        if method != "rtn":
            assert q.relative_error < q.rtn_relative_error, method


def test_a_hessian_instead_of_activations():
    w, x = layer(seed=3)
    from_x = quantkit.quantize_layer(w, x)
    from_h = quantkit.quantize_layer(w, hessian=x.astype(np.float64).T @ x.astype(np.float64))
    assert from_h.relative_error == pytest.approx(from_x.relative_error, rel=1e-3)
    assert np.mean(from_h.tensors["qweight"] != from_x.tensors["qweight"]) < 0.05


def test_bad_input_raises_an_error_naming_it():
    w, x = layer()
    with pytest.raises(QuantKitErrorOrValue) as e:
        quantkit.quantize_layer(w, x, bits=5)
    assert "5" in str(e.value)
    with pytest.raises(quantkit.QuantKitError) as e:
        quantkit.quantize_layer(w, hessian=np.eye(256), method="awq")
    assert "activations" in str(e.value) and e.value.status == 1
    with pytest.raises(ValueError):
        quantkit.quantize_layer(w, x[:, :100])
    with pytest.raises(ValueError):
        quantkit.quantize_layer(w, x, method="hqq")
    bad = w.copy()
    bad[3, 7] = np.nan
    with pytest.raises(quantkit.QuantKitError):
        quantkit.quantize_layer(bad, x)
    with pytest.raises(quantkit.QuantKitError) as e:
        quantkit.read_safetensors("/nonexistent/x.safetensors")
    assert "/nonexistent/x.safetensors" in str(e.value)


QuantKitErrorOrValue = (quantkit.QuantKitError, ValueError)


def test_command_line_layer_creates_missing_folders_and_names_a_bad_out(tmp_path):
    w, x = layer(out=16, n=64, tokens=128)
    quantkit.write_safetensors(tmp_path / "in.safetensors", {"weight": w, "inputs": x})
    nested = tmp_path / "runs" / "today" / "layer.safetensors"
    subprocess.run([CLI, "layer", "--input", str(tmp_path / "in.safetensors"), "--out", str(nested), "--group-size", "32"],
                   check=True, capture_output=True, text=True)
    assert set(quantkit.read_safetensors(nested)) >= {"qweight", "scales"}
    (tmp_path / "file").write_text("not a folder")
    r = subprocess.run([CLI, "layer", "--input", str(tmp_path / "in.safetensors"), "--out", str(tmp_path / "file" / "x.safetensors"),
                        "--group-size", "32"], capture_output=True, text=True)
    assert r.returncode != 0 and "--out" in r.stderr and "cannot create the folder" in r.stderr and r.stdout == ""


def test_safetensors_round_trip_and_layout(tmp_path):
    tensors = {"a": np.arange(12, dtype=np.float32).reshape(3, 4), "b": np.array([1, -2], dtype=np.int64),
               "c": np.ones((2, 2, 2), dtype=np.float16), "empty": np.zeros((0, 3), dtype=np.int32)}
    path = tmp_path / "t.safetensors"
    quantkit.write_safetensors(path, tensors)
    back = quantkit.read_safetensors(path)
    assert set(back) == set(tensors)
    for k in tensors:
        np.testing.assert_array_equal(back[k], tensors[k])
        assert back[k].dtype == tensors[k].dtype
    # The file itself, read by hand: 8-byte little-endian header length, JSON header, data.
    raw = path.read_bytes()
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8:8 + n])
    start, end = header["a"]["data_offsets"]
    assert header["a"]["dtype"] == "F32" and header["a"]["shape"] == [3, 4]
    assert raw[8 + n + start:8 + n + end] == tensors["a"].tobytes()


@pytest.mark.skipif(not os.path.isdir(FIXTURE), reason="the SmolLM2 fixture is not built")
def test_quantize_model_stops_resumes_and_matches_the_command_line(tmp_path):
    out = tmp_path / "rtn"
    seen = []

    def stop_at_three(done, total, stage):
        seen.append((done, total, stage))
        return done >= 3

    with pytest.raises(quantkit.QuantKitError) as e:
        quantkit.quantize_model(FIXTURE, None, out, method="rtn", progress=stop_at_three)
    assert e.value.status == 6 and not out.exists()
    assert seen[-1][0] == 3 and seen[0][1] == 30
    report = quantkit.quantize_model(FIXTURE, None, out, method="rtn", resume=True)
    assert report["resumed_after_block"] == 3
    subprocess.run([CLI, "quantize", "--model", FIXTURE, "--out", str(tmp_path / "cli"), "--method", "rtn", "--quiet"],
                   check=True, capture_output=True)
    digest = lambda p: hashlib.sha256(p.read_bytes()).hexdigest()
    assert digest(out / "model.safetensors") == digest(tmp_path / "cli" / "model.safetensors")
