"""tools/export.py and the torch-free runtime: an exported model gives the
PyTorch path's masks and reports, through DamageSegmenter and
tools/infer.py, and a file that is not ours, corrupt or too new is refused
naming it."""
import json
import os.path as osp
import shutil

import numpy as np
import pytest
from PIL import Image

from cardamage_mmseg.cli.main import run
from conftest import DEMO, load_tool

DEMO_VAL_PHOTO = osp.join(DEMO, 'val', '1.jpg')

onnx = pytest.importorskip('onnx')
ort = pytest.importorskip('onnxruntime')


@pytest.fixture(scope='module')
def export_tool():
    return load_tool('tools/export.py')


@pytest.fixture(scope='module')
def exported(exported_models):
    return exported_models


@pytest.fixture(scope='module')
def infer_tool():
    return load_tool('tools/infer.py')


def _torch(members, name, **kw):
    from cardamage_mmseg.apis import DamageSegmenter
    cfg, ckpt = members[name]
    return DamageSegmenter(cfg, ckpt, **kw)


@pytest.mark.parametrize('name', ['b0', 'mvit'])
def test_exported_model_gives_the_pytorch_masks(members, exported,
                                                 val_photos, name, capsys):
    from cardamage_mmseg.apis import DamageSegmenter, OnnxSegmenter
    seg = DamageSegmenter(exported[name])  # the front door dispatches
    assert isinstance(seg, OnnxSegmenter)
    ref = _torch(members, name)
    assert seg.classes == ref.classes and seg.palette == [
        list(c) for c in ref.palette]
    photos = sorted(str(p) for p in val_photos.iterdir())
    ours, theirs = seg(photos, batch_size=2), ref(photos)
    same = sum(int((a.mask == b.mask).sum()) for a, b in zip(ours, theirs))
    total = sum(a.mask.size for a in ours)
    assert same / total >= 0.9999
    for a, b in zip(ours, theirs):
        assert a.mask.shape == b.mask.shape
        assert a.report['damage_share'] == pytest.approx(
            b.report['damage_share'], abs=1e-3)
        assert a.report['mean_confidence'] == pytest.approx(
            b.report['mean_confidence'], abs=1e-3)
        assert np.abs(a.probs - b.probs).max() < 1e-3


def test_export_wrote_the_metadata_a_runtime_needs(exported, members):
    model = onnx.load(exported['mvit'])
    meta = json.loads({p.key: p.value for p in model.metadata_props}[
        'cardamage_mmseg'])
    assert meta['schema_version'] == 1
    assert meta['classes'] == ['background', 'damage']
    # MobileViT is trained on BGR in [0, 1]: the graph turns RGB into BGR
    assert meta['input']['model_channel_order'] == 'BGR'
    assert meta['input']['std'] == [255.0] * 3
    assert meta['resize'] == dict(type='keep_ratio', scale=[64, 64])
    cfg, ckpt = members['mvit']
    from cardamage_mmseg.apis.export import file_sha256
    assert meta['source']['checkpoints'][0]['sha256'] == file_sha256(ckpt)
    # dynamic batch, height and width
    [inp] = model.graph.input
    dims = [d.dim_param or d.dim_value for d in
            inp.type.tensor_type.shape.dim]
    assert isinstance(dims[0], str) and isinstance(dims[2], str) and \
        isinstance(dims[3], str) and dims[1] == 3


def test_gelu_exports_as_one_node(exported):
    """At opset 18 each GELU was five nodes around an Erf, a pattern
    onnxruntime 1.32 does not fuse (docs/deploy.md)."""
    graph = onnx.load(exported['b0']).graph
    ops = [n.op_type for n in graph.node]
    assert ops.count('Gelu') == 8  # MiT-b0: 2 + 2 + 2 + 2 blocks
    assert 'Erf' not in ops


@pytest.mark.parametrize('classes', [2, 3])
def test_log_softmax_of_the_graph_is_log_softmax(classes):
    import torch
    from cardamage_mmseg.apis.export import log_softmax_classes
    for seed in range(20):
        torch.manual_seed(seed)
        logits = torch.randn(2, classes, 5, 7, dtype=torch.float64) * 30
        logits[0, 0, 0, 0], logits[0, -1, 0, 0] = 80.0, -80.0
        expected = torch.log_softmax(logits, 1)
        assert torch.allclose(log_softmax_classes(logits), expected,
                              atol=1e-12, rtol=0)
        # float32: a few units in the last place; |log p| reaches 200,
        # where one unit is 1.5e-5 (a fixed 1e-5 failed 1 seed in 10)
        assert torch.allclose(log_softmax_classes(logits.float()),
                              expected.float(), atol=1e-5, rtol=4e-7)


def test_graph_resizes_the_logit_difference_to_the_same_values(members):
    """Two classes: the graph resizes x1 - x0 instead of both logits and
    gives log_softmax(resize(logits)) within float rounding."""
    import torch
    import torch.nn.functional as F
    from cardamage_mmseg.apis.export import ExportGraph
    seg = _torch(members, 'b0')
    graph = ExportGraph(seg.model).eval()
    torch.manual_seed(0)
    image = torch.rand(2, 3, 45, 61) * 255  # odd: the resize is not 4x
    with torch.no_grad():
        got = graph(image)[:, 0]
        x = (image - graph.mean) / graph.std
        logits = seg.model.decode_head(seg.model.extract_feat(x))
        expected = torch.log_softmax(F.interpolate(
            logits, size=x.shape[2:], mode='bilinear',
            align_corners=graph.align_corners), 1)
    assert got.shape == expected.shape == (2, 2, 45, 61)
    assert torch.allclose(got, expected, atol=1e-5, rtol=1e-6)


def test_flip_tta_matches_the_pytorch_tta(members, exported, val_photos):
    from cardamage_mmseg.runtime import OnnxSegmenter
    photo = str(val_photos / '4.jpg')
    [a] = OnnxSegmenter(exported['b0'], tta=True)(photo)
    [b] = _torch(members, 'b0', tta=True)(photo)
    assert (a.mask == b.mask).mean() >= 0.9999
    assert np.abs(a.probs - b.probs).max() < 1e-3


def test_infer_tool_runs_an_exported_model(members, exported, infer_tool,
                                           val_photos, tmp_path, capsys):
    cfg, ckpt = members['b0']
    out_torch, out_onnx = str(tmp_path / 'torch'), str(tmp_path / 'onnx')
    assert run(infer_tool.main, [cfg, ckpt, str(val_photos), '--out',
                                 out_torch]) == 0
    assert run(infer_tool.main, [exported['b0'], str(val_photos), '--out',
                                 out_onnx, '--threads', '1',
                                 '--batch-size', '2', '--save-probs']) == 0
    assert '4 image(s) segmented' in capsys.readouterr().out
    rows = {}
    for out in (out_torch, out_onnx):
        with open(osp.join(out, 'report.json')) as f:
            rows[out] = {osp.basename(r['file']): r for r in json.load(f)}
    assert set(rows[out_torch]) == set(rows[out_onnx])
    for name, row in rows[out_onnx].items():
        assert row['status'] == 'ok'
        stem = name[:-4]
        a = np.asarray(Image.open(osp.join(out_onnx, 'masks', stem + '.png')))
        b = np.asarray(Image.open(osp.join(out_torch, 'masks',
                                           stem + '.png')))
        assert (a == b).mean() >= 0.9999
        probs = np.load(osp.join(out_onnx, 'probs', stem + '.npy'))
        assert probs.dtype == np.float16 and probs.shape[0] == 2
    # a re-run reuses everything (the model file's identity)
    assert run(infer_tool.main, [exported['b0'], str(val_photos), '--out',
                                 out_onnx, '--save-probs']) == 0
    assert '4 already done' in capsys.readouterr().out


def test_infer_refuses_pytorch_options_for_an_exported_model(
        exported, infer_tool, val_photos, tmp_path, capsys):
    with pytest.raises(SystemExit):
        infer_tool.parse_args([exported['b0'], str(val_photos), '--amp'])
    assert '--amp: not for an exported model' in capsys.readouterr().err


def _plain_onnx(path):
    """A valid ONNX model that is not ours (an identity, no metadata)."""
    from onnx import TensorProto, helper
    graph = helper.make_graph(
        [helper.make_node('Identity', ['image'], ['log_probs'])], 'g',
        [helper.make_tensor_value_info('image', TensorProto.FLOAT,
                                       [1, 3, 8, 8])],
        [helper.make_tensor_value_info('log_probs', TensorProto.FLOAT,
                                       [1, 3, 8, 8])])
    onnx.save(helper.make_model(graph, opset_imports=[
        helper.make_opsetid('', 18)]), path)


def test_bad_model_files_are_refused_naming_the_file(exported, tmp_path,
                                                     infer_tool, val_photos,
                                                     capsys):
    from cardamage_mmseg.apis.export import set_metadata
    from cardamage_mmseg.runtime import ModelFileError, OnnxSegmenter
    foreign = str(tmp_path / 'foreign.onnx')
    _plain_onnx(foreign)
    corrupt = str(tmp_path / 'corrupt.onnx')
    with open(exported['b0'], 'rb') as f:
        data = f.read()
    with open(corrupt, 'wb') as f:
        f.write(data[:len(data) // 3])  # a truncated download
    newer = str(tmp_path / 'newer.onnx')
    shutil.copy(exported['b0'], newer)
    meta = json.loads({p.key: p.value for p in onnx.load(newer)
                       .metadata_props}['cardamage_mmseg'])
    set_metadata(newer, meta)
    model = onnx.load(newer)
    model.metadata_props[0].value = model.metadata_props[0].value.replace(
        '"schema_version": 1', '"schema_version": 99')
    onnx.save(model, newer)
    cases = [(foreign, 'not a cardamage-mmseg model'),
             (corrupt, 'cannot load it'),
             (newer, 'reads up to 1: upgrade')]
    for path, why in cases:
        with pytest.raises(ModelFileError, match=why) as info:
            OnnxSegmenter(path)
        assert path in str(info.value)
        code = run(infer_tool.main, [path, str(val_photos), '--out',
                                     str(tmp_path / 'out')])
        err = capsys.readouterr().err
        assert code == 2 and path in err and why in err
    with pytest.raises(FileNotFoundError):
        OnnxSegmenter(str(tmp_path / 'missing.onnx'))
    with pytest.raises(ModelFileError, match='amp'):
        OnnxSegmenter(exported['b0'], amp='bf16')


def test_export_never_overwrites_and_explains_what_cannot_export(
        members, export_tool, exported, tmp_path, capsys):
    cfg, ckpt = members['b0']
    before = open(exported['b0'], 'rb').read()
    assert run(export_tool.main, [cfg, ckpt, '--out', exported['b0']]) == 2
    assert 'exists' in capsys.readouterr().err
    assert open(exported['b0'], 'rb').read() == before
    # an ensemble whose member pads its test input cannot share one input
    (c0, k0), (c1, k1) = members['b0'], members['mvit']
    ens = tmp_path / 'ens.py'
    ens.write_text(
        f"_base_ = [{c0!r}]\n"
        f"model = dict(_delete_=True, type='EnsembleSegmentor', members=[\n"
        f"    dict(config={c0!r}, checkpoint={k0!r}),\n"
        f"    dict(config={c1!r}, checkpoint={k1!r}, cfg_options={{\n"
        f"        'model.data_preprocessor.test_cfg': "
        f"dict(size_divisor=32)}})])\n")
    assert run(export_tool.main, [str(ens), '--out',
                                  str(tmp_path / 'e.onnx')]) == 2
    err = capsys.readouterr().err
    assert 'member 1' in err and 'pads its test input' in err
    assert not (tmp_path / 'e.onnx').exists()


@pytest.fixture(scope='module')
def exported_ensemble(members, export_tool, val_photos, tmp_path_factory):
    """The union of b0 (RGB, ImageNet mean/std) and MobileViT-S (BGR,
    [0, 1]) as one graph: (ensemble config, .onnx)."""
    from conftest import write_ensemble_config
    folder = tmp_path_factory.mktemp('onnx_ensemble')
    cfg = write_ensemble_config(folder / 'ens.py', [members['b0'],
                                                    members['mvit']],
                                fusion='union')
    path = str(folder / 'ens.onnx')
    assert run(export_tool.main, [cfg, '--out', path, '--verify-dir',
                                  str(val_photos)]) == 0
    return cfg, path


def test_an_ensemble_exports_as_one_graph_with_its_fusion_rule(
        exported_ensemble, members, val_photos):
    """Before, ensemble configs were refused; now the members run in one
    graph, each with its own normalisation, and the core fuses."""
    from cardamage_mmseg.apis import DamageSegmenter
    from cardamage_mmseg.runtime import OnnxSegmenter
    cfg, path = exported_ensemble
    meta = json.loads({p.key: p.value for p in onnx.load(path)
                       .metadata_props}['cardamage_mmseg'])
    assert meta['terms'] == 2 and meta['fusion']['rule'] == 'union'
    assert [m['model_channel_order'] for m in meta['fusion']['members']] \
        == ['RGB', 'BGR']
    assert [c['sha256'] for c in meta['source']['checkpoints']] == [
        m['checkpoint']['sha256'] for m in meta['fusion']['members']]
    photos = sorted(str(p) for p in val_photos.iterdir())
    for tta in (False, True):  # flip terms stay with their member
        ours = OnnxSegmenter(path, tta=tta)(photos, batch_size=2)
        theirs = DamageSegmenter(cfg, tta=tta)(photos)
        same = sum(int((a.mask == b.mask).sum())
                   for a, b in zip(ours, theirs))
        assert same / sum(a.mask.size for a in ours) >= 0.9999
        for a, b in zip(ours, theirs):
            assert a.report['damage_share'] == pytest.approx(
                b.report['damage_share'], abs=1e-3)
    # the union is not either member alone: the fusion really ran
    [fused] = OnnxSegmenter(path)(photos[:1])
    alone = [DamageSegmenter(c, k)(photos[:1])[0].mask
             for c, k in (members['b0'], members['mvit'])]
    assert (fused.mask == np.maximum(*alone)).mean() >= 0.999


@pytest.mark.slow
def test_int8_dynamic_export_is_verified(members, export_tool, val_photos,
                                         tmp_path, capsys):
    """int8 (MatMul weights) of b0: written only if it agrees with
    PyTorch to --min-agreement; the metadata says how it was made."""
    cfg, ckpt = members['b0']
    path = str(tmp_path / 'b0_int8.onnx')
    code = run(export_tool.main, [cfg, ckpt, '--out', path, '--quantize',
                                  'int8-dynamic', '--verify-dir',
                                  str(val_photos), '--min-agreement',
                                  '0.9'])
    printed = capsys.readouterr().out
    assert code == 0, printed
    assert 'photo size' in printed
    meta = json.loads({p.key: p.value for p in onnx.load(path)
                       .metadata_props}['cardamage_mmseg'])
    assert meta['quantization']['mode'] == 'dynamic'
    # an impossible bar: nothing is written, exit 1
    other = str(tmp_path / 'strict.onnx')
    assert run(export_tool.main, [cfg, ckpt, '--out', other, '--quantize',
                                  'int8-dynamic', '--verify-dir',
                                  str(val_photos), '--min-agreement',
                                  '1.01']) == 1
    assert not osp.exists(other)


def test_export_also_verifies_a_photo_of_another_size(members, exported,
                                                      val_photos, tmp_path):
    """The bundled val photos are all 1024 x 1024: a graph that holds only
    at its traced input size (mmseg's Swin did: the batch and the padding
    were traced as constants) passed a check on them. The export now also
    checks a crop of another shape, and a graph that fails there stops the
    export naming the photo."""
    from cardamage_mmseg.apis.export import compare, other_size_photo
    from cardamage_mmseg.runtime import OnnxSegmenter
    from cardamage_mmseg.core.resize import rescale_size
    from cardamage_mmseg.utils.config import ConfigError
    photo = str(DEMO_VAL_PHOTO)  # 1024 x 1024, like all 8 val photos
    crop = other_size_photo(photo, str(tmp_path))
    width, height = Image.open(crop).size
    assert width % 2 and height % 2  # odd: padding paths run
    # at the shipped configs' scale the model input differs
    assert rescale_size(width, height, (2048, 512)) != rescale_size(
        *Image.open(photo).size, (2048, 512))
    ref, seg = _torch(members, 'b0'), OnnxSegmenter(exported['b0'])
    assert compare(ref, seg, [photo, crop]).mask_agreement >= 0.9999
    traced = seg.forward

    def fails_beyond_the_traced_size(prepared):
        if prepared[0].source == crop:
            raise RuntimeError('GatherND: invalid index found')
        return traced(prepared)

    seg.forward = fails_beyond_the_traced_size
    with pytest.raises(ConfigError, match='fails on this photo') as info:
        compare(ref, seg, [photo, crop])
    assert crop in str(info.value)


def test_shapes_met_twice_get_a_session_of_their_own(exported):
    """Shape sessions (runtime/shaped_sessions.py): the second input of a
    shape runs a session specialised to it, with the generic session's
    outputs; past the limit the least recently used shape is dropped; 0
    and the user's own session options keep one session."""
    from cardamage_mmseg.runtime import OnnxSegmenter
    seg = OnnxSegmenter(exported['b0'], threads=1)
    sessions = seg.sessions
    assert sessions.free == {0: 'batch', 2: 'height', 3: 'width'}
    rng = np.random.default_rng(0)
    a = rng.uniform(0, 255, (2, 3, 64, 96)).astype(np.float32)
    b = rng.uniform(0, 255, (1, 3, 96, 64)).astype(np.float32)
    c = rng.uniform(0, 255, (1, 3, 64, 64)).astype(np.float32)
    first = seg._session_run(a)
    assert sessions.shapes == ()  # met once: the generic session ran
    second = seg._session_run(a)
    assert sessions.shapes == (a.shape,)
    assert sessions.get(a.shape) is not sessions.generic
    assert np.abs(first - second).max() < 1e-5
    assert (first.argmax(2) == second.argmax(2)).all()
    for x in (b, b, c, c):  # a third shape drops the oldest one
        seg._session_run(x)
    assert sessions.shapes == (b.shape, c.shape)
    for kw in (dict(shape_sessions=0),
               dict(session_options=ort.SessionOptions())):
        one = OnnxSegmenter(exported['b0'], **kw)
        for _ in range(3):
            assert np.abs(one._session_run(a) - first).max() < 1e-5
        assert one.sessions.shapes == ()
    from cardamage_mmseg.runtime import ModelFileError
    with pytest.raises(ModelFileError, match='shape_sessions'):
        OnnxSegmenter(exported['b0'], shape_sessions=-1)


def test_sessions_stop_spinning_when_a_run_returns(exported):
    """The runtime's sessions, generic and per shape, end their threads'
    spin-wait after a run (else they take the cores the work after the
    run needs); the user's own options are used as given."""
    from cardamage_mmseg.runtime import OnnxSegmenter
    key = 'session.force_spinning_stop'
    seg = OnnxSegmenter(exported['b0'], threads=1)
    x = np.zeros((1, 3, 64, 64), np.float32)
    seg._session_run(x)
    seg._session_run(x)
    shaped = seg.sessions.get(x.shape)
    assert shaped is not seg.session
    for session in (seg.session, shaped):
        options = session.get_session_options()
        assert options.get_session_config_entry(key) == '1'
    own = OnnxSegmenter(exported['b0'], session_options=ort.SessionOptions())
    with pytest.raises(Exception):  # not set: onnxruntime has no entry
        own.session.get_session_options().get_session_config_entry(key)


def test_a_shape_session_that_cannot_load_leaves_the_generic_one(
        exported, tmp_path):
    from cardamage_mmseg.runtime.shaped_sessions import ShapedSessions
    generic = ort.InferenceSession(exported['b0'],
                                   providers=['CPUExecutionProvider'])
    gone = str(tmp_path / 'moved.onnx')  # the file went away meanwhile
    sessions = ShapedSessions(gone, generic, ort.SessionOptions,
                              ['CPUExecutionProvider'], limit=2, after=1)
    with pytest.warns(UserWarning, match='moved.onnx'):
        assert sessions.get((1, 3, 64, 64)) is generic
    assert sessions.limit == 0 and sessions.shapes == ()
    assert sessions.get((1, 3, 64, 64)) is generic  # no second try


def test_int8_static_quantises_the_convolutions_only(exported, val_photos,
                                                     tmp_path):
    """Static int8 puts convolutions in int8 and leaves the attention's
    softmax and matrix products in float (quantised, they made the whole
    file slower: runtime/quantize.py); the file runs in the runtime."""
    from cardamage_mmseg.runtime import OnnxSegmenter
    from cardamage_mmseg.runtime.quantize import quantize_int8
    dst = str(tmp_path / 'b0_int8.onnx')
    photos = sorted(str(p) for p in val_photos.iterdir())
    quantize_int8(exported['b0'], dst, 'static', photos)
    graph = onnx.load(dst).graph
    int8 = {n.output[0] for n in graph.node
            if n.op_type == 'DequantizeLinear'}
    convs = [n for n in graph.node if n.op_type == 'Conv']
    assert convs and all(n.input[1] in int8 for n in convs)  # weights
    floats = [n for n in graph.node
              if n.op_type in ('Softmax', 'MatMul', 'Gemm')]
    assert floats and not any(set(n.input) & int8 for n in floats)
    from cardamage_mmseg.apis.export import set_metadata
    meta = json.loads({p.key: p.value for p in onnx.load(exported['b0'])
                       .metadata_props}['cardamage_mmseg'])
    set_metadata(dst, dict(meta, quantization=dict(mode='static')))
    [result] = OnnxSegmenter(dst)(photos[:1])
    [fp32] = OnnxSegmenter(exported['b0'])(photos[:1])
    assert result.mask.shape == fp32.mask.shape


def test_many_shapes_stop_making_sessions():
    """A server's changing batch sizes: sessions are made for at most
    4 x limit shapes, a dropped shape must be met `after` times again,
    and every other shape runs the generic session."""
    from cardamage_mmseg.runtime.shaped_sessions import ShapedSessions

    class Input:
        shape = ['batch', 3, 'height', 'width']

    class Generic:
        def get_inputs(self):
            return [Input()]
    generic = Generic()
    sessions = ShapedSessions('m.onnx', generic, None, [], limit=2, after=2)
    made = []
    sessions._specialise = lambda shape: made.append(shape) or object()
    a, b, c = (1, 3, 64, 64), (2, 3, 64, 64), (3, 3, 64, 64)
    for shape in (a, a, b, b, c):
        sessions.get(shape)
    assert made == [a, b] and sessions.shapes == (a, b)
    assert sessions.get(c) is not generic  # met twice: a is dropped
    assert sessions.shapes == (b, c)
    assert sessions.get(a) is generic  # counts from 0 again
    for batch in range(4, 40):
        for _ in range(2):
            sessions.get((batch, 3, 64, 64))
    assert sessions.made == len(made) == 8 and len(sessions.shapes) == 2
    assert sessions.get((99, 3, 64, 64)) is generic
