"""Grid encodings under fp16 autocast: the table and the encoding stay float32 on every backend."""

from __future__ import annotations

import pytest
import torch

from radnerf_cli.kernels import GridEncoder, set_backend
from radnerf_cli.kernels.backend import get_backend


@pytest.fixture
def backend():
    before = get_backend()
    yield set_backend
    set_backend(before)


def _grid(device: str) -> GridEncoder:
    torch.manual_seed(0)
    enc = GridEncoder(3, num_levels=8, level_dim=2, base_resolution=8, log2_hashmap_size=12, desired_resolution=128)
    with torch.no_grad():
        enc.embeddings.uniform_(-1, 1)
    return enc.to(device)


@pytest.mark.parametrize("name", ["torch", "cpu", pytest.param("cuda", marks=pytest.mark.cuda)])
def test_half_inputs_are_encoded_in_float32(backend, name):
    backend(name)
    dev = "cuda" if name == "cuda" else "cpu"
    enc = _grid(dev)
    x = (torch.rand(512, 3, generator=torch.Generator().manual_seed(1)) * 2 - 1).half().to(dev)
    out_h = enc(x)
    out_h.square().sum().backward()
    g_h = enc.embeddings.grad.clone()
    enc.embeddings.grad = None
    out_f = enc(x.float())  # the same (half-representable) points in float32
    out_f.square().sum().backward()
    assert out_h.dtype == torch.float32 and enc.embeddings.grad.dtype == torch.float32
    assert torch.equal(out_h, out_f) and torch.equal(g_h, enc.embeddings.grad)


@pytest.mark.cuda
def test_autocast_keeps_the_table_in_float32(backend):
    backend("cuda")
    enc = _grid("cuda")
    lin = torch.nn.Linear(enc.output_dim, 4).cuda()
    x = torch.rand(4096, 3, device="cuda") * 2 - 1
    with torch.autocast("cuda", dtype=torch.float16):
        feat = enc(x)
        y = lin(feat)
    assert feat.dtype == torch.float32 and y.dtype == torch.float16
    y.float().square().sum().backward()
    g16 = enc.embeddings.grad.clone()
    enc.embeddings.grad = None
    lin(enc(x)).square().sum().backward()
    assert g16.dtype == torch.float32
    torch.testing.assert_close(g16, enc.embeddings.grad, rtol=2e-2, atol=1e-3)
