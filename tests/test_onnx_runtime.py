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
from conftest import load_tool

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
    from conftest import write_ensemble_config
    cfg, ckpt = members['b0']
    before = open(exported['b0'], 'rb').read()
    assert run(export_tool.main, [cfg, ckpt, '--out', exported['b0']]) == 2
    assert 'exists' in capsys.readouterr().err
    assert open(exported['b0'], 'rb').read() == before
    ens = write_ensemble_config(tmp_path / 'ens.py', [members['b0'],
                                                      members['mvit']])
    assert run(export_tool.main, [ens, ckpt, '--out',
                                  str(tmp_path / 'e.onnx')]) == 2
    assert 'an ensemble exports as its members' in capsys.readouterr().err
    assert not (tmp_path / 'e.onnx').exists()


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
