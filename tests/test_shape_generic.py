"""mmseg's Swin exported once holds for every batch and size: before
:mod:`cardamage_mmseg.models.shape_generic`, a graph traced at batch 2
gave other values at batch 1 (max difference 3.1 on a small Swin) and a
7 x 10 map where PyTorch gives 8 x 10 (227 x 301 input)."""
import numpy as np
import pytest
import torch

import cardamage_mmseg.register  # noqa: F401  (before mmseg's models)
from cardamage_mmseg.models.shape_generic import shape_generic

ort = pytest.importorskip('onnxruntime')
pytest.importorskip('onnxscript')


def small_swin():
    from mmseg.models.backbones import SwinTransformer
    torch.manual_seed(0)
    swin = SwinTransformer(embed_dims=16, depths=(2, 2), num_heads=(1, 2),
                           strides=(4, 2), out_indices=(0, 1),
                           window_size=7)
    swin.eval()  # mmseg's Swin.train() returns None: no chaining
    return swin


SIZES = [(1, 64, 85), (3, 64, 64), (1, 67, 101), (2, 97, 63)]


def test_eager_outputs_are_unchanged():
    swin = small_swin()
    with torch.no_grad():
        for b, h, w in SIZES:
            x = torch.randn(b, 3, h, w)
            ref = swin(x)
            with shape_generic(swin) as bound:
                ours = swin(x)
            assert bound == 2 + 2 + 2  # 4 window attentions, 2 paddings
            assert all(torch.equal(a, c) for a, c in zip(ref, ours))
    assert 'forward' not in vars(swin.stages[0].blocks[0].attn)  # restored


@pytest.mark.slow  # the export takes about 50 s here
def test_a_swin_graph_traced_at_batch_2_holds_for_other_batches_and_sizes(
        tmp_path):
    swin = small_swin()
    dims = ({0: torch.export.Dim('batch', min=1, max=64),
             2: torch.export.Dim('height', min=32, max=4096),
             3: torch.export.Dim('width', min=32, max=4096)},)
    with torch.no_grad(), shape_generic(swin):
        program = torch.onnx.export(swin, (torch.randn(2, 3, 64, 85),),
                                    dynamo=True, opset_version=18,
                                    input_names=['x'], dynamic_shapes=dims,
                                    verbose=False)
    path = str(tmp_path / 'swin.onnx')
    program.save(path)
    session = ort.InferenceSession(path, providers=['CPUExecutionProvider'])
    for b, h, w in SIZES:
        x = torch.randn(b, 3, h, w)
        with torch.no_grad():
            ref = [t.numpy() for t in swin(x)]
        out = session.run(None, {'x': x.numpy()})
        assert [o.shape for o in out] == [r.shape for r in ref]
        assert max(np.abs(o - r).max() for o, r in zip(out, ref)) < 1e-4
