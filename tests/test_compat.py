"""The work-around for mmpretrain 1.2.0 + transformers >= 4.56
(cardamage_mmseg.utils.compat): without it ``import mmseg.models`` dies in
any environment holding mmdet/pycocotools and a current transformers."""
import os
import os.path as osp

import pytest
from conftest import REPO, run_tool

from cardamage_mmseg.utils.compat import mmpretrain_multimodal_breaks

pytest.importorskip('pycocotools')  # mmpretrain only imports them with it


@pytest.mark.parametrize('version,breaks', [
    (None, False), ('4.28.0', False), ('4.55.4', False), ('4.56.0', True),
    ('4.56.0.dev0', True), ('4.57.6', True), ('5.17.0', True),
    ('10.0', True), ('garbage', False)])
def test_breaking_versions(version, breaks):
    assert mmpretrain_multimodal_breaks(version) is breaks


#: a stand-in for transformers >= 4.56: what mmpretrain's huggingface
#: helpers need exists, ``modeling_utils`` lacks what its BLIP code imports
STAND_IN = {
    'transformers/__init__.py': (
        "__version__ = '5.0.0'\n"
        "from .modeling_utils import PreTrainedModel  # noqa\n"
        "from .models.auto.auto_factory import _BaseAutoModelClass\n\n\n"
        "def __getattr__(name):\n"
        "    if name.startswith('__'):\n"
        "        raise AttributeError(name)\n"
        "    bases = (_BaseAutoModelClass, ) if name.startswith('Auto') "
        "else ()\n"
        "    return type(name, bases, dict(from_pretrained=None, "
        "from_config=None))\n"),
    'transformers/modeling_utils.py': 'class PreTrainedModel:\n    pass\n',
    'transformers/models/__init__.py': '',
    'transformers/models/auto/__init__.py': '',
    'transformers/models/auto/auto_factory.py':
        'class _BaseAutoModelClass:\n    pass\n',
    'transformers-5.0.0.dist-info/METADATA':
        'Metadata-Version: 2.1\nName: transformers\nVersion: 5.0.0\n',
}


@pytest.fixture
def transformers_5(tmp_path):
    """PYTHONPATH with the stand-in installed ahead of anything else."""
    for name, text in STAND_IN.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    return dict(PYTHONPATH=os.pathsep.join(
        [str(tmp_path)] + [p for p in os.environ.get(
            'PYTHONPATH', '').split(os.pathsep) if p]))


def test_stand_in_reproduces_the_break(transformers_5):
    """The control: mmpretrain fails exactly as with the real thing."""
    result = run_tool('-c', 'import mmpretrain.models', env=transformers_5)
    assert result.returncode != 0
    assert 'NoneType takes no arguments' in result.stderr


def test_cardamage_import_first_makes_mmseg_models_import(transformers_5):
    code = ('import cardamage_mmseg, mmseg.models\n'
            'import cardamage_mmseg.register\n'
            'from mmpretrain.registry import MODELS\n'
            'from mmseg.registry import MODELS as SEG\n'
            "assert SEG.get('DilatedMobileViT') is not None\n"
            "assert MODELS.get('MobileViT') is not None\n"
            "print('blip:', MODELS.get('BlipCaption').__name__)\n")
    result = run_tool('-c', code, env=transformers_5)
    assert result.returncode == 0, result.stderr[-2000:]
    # mmpretrain's own placeholder, which explains what to install
    assert 'blip: ask_install' in result.stdout
    assert 'transformers 5.0.0 breaks mmpretrain' in result.stderr


def test_the_pinned_transformers_is_covered_by_the_shim():
    """requirements/hf.txt's transformers (installed by tools/install.sh)
    together with the real mmpretrain/mmdet: mmseg's models and a HF model
    build in one fresh process."""
    import re
    pin = re.search(r'^transformers==(\S+)', open(osp.join(
        REPO, 'requirements', 'hf.txt')).read(), re.M)[1]
    assert mmpretrain_multimodal_breaks(pin)  # the shim is what saves it
    pytest.importorskip('transformers')
    from importlib import metadata
    assert metadata.version('transformers') == pin
    code = ('import cardamage_mmseg.register, mmseg.models, mmdet.models\n'
            'import transformers\n'
            'from mmseg.registry import MODELS\n'
            "m = MODELS.build(dict(type='HFSemanticSegModel', num_labels=2,"
            " config=dict(model_type='segformer', hidden_sizes=[8, 16, 40,"
            " 64], depths=[1, 1, 1, 1], decoder_hidden_size=16)))\n"
            "print('built', type(m.model).__name__)\n")
    result = run_tool('-c', code)
    assert result.returncode == 0, result.stderr[-2000:]
    assert 'built SegformerForSemanticSegmentation' in result.stdout
