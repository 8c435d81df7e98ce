"""load_config's speed-up of mmengine's ``mmseg::`` base lookup resolves
every base the configs use to the file mmengine itself resolves."""
import glob
import os.path as osp
import re

from mmengine.config import Config
from mmengine.config.utils import (_get_external_cfg_base_path,
                                   _get_external_cfg_path)
from mmengine.utils import get_installed_path

import cardamage_mmseg.utils.config  # noqa: F401  (applies the lookup)
from conftest import REPO


def mmengine_lookup(package, name):
    """mmengine 0.10.7's own resolution of ``package::name``."""
    try:  # scans every metafile of the model index, then falls back
        return _get_external_cfg_path(package, name)
    except ValueError:
        return _get_external_cfg_base_path(package, name)


def test_mmseg_configs_resolve_as_mmengine_does():
    names = sorted({m for path in glob.glob(osp.join(REPO, 'configs', '**',
                                                     '*.py'), recursive=True)
                    for m in re.findall(r"mmseg::([^'\"]+)",
                                        open(path).read())})
    assert len(names) >= 5 and all(n.startswith('_base_/') for n in names)
    # a named model config goes through mmengine's lookup unchanged
    names.append('segformer/segformer_mit-b0_8xb2-160k_ade20k-512x512.py')
    package = get_installed_path('mmseg')
    for name in names:
        path, scope = Config._get_cfg_path(f'mmseg::{name}', 'any.py')
        assert (path, scope) == (mmengine_lookup(package, name), 'mmseg')
        assert osp.isfile(path)
