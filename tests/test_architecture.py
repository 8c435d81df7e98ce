"""The package's boundaries: imports point down (import-linter's contract
in .importlinter), the core and ``import cardamage_mmseg`` stay torch-free,
the library never exits the interpreter or parses arguments, moved names
keep a deprecated alias, and the package runs from an installed wheel."""
import ast
import glob
import os
import os.path as osp
import shutil
import subprocess
import sys

import pytest

from conftest import REPO

PACKAGE = osp.join(REPO, 'cardamage_mmseg')
LINT_IMPORTS = osp.join(osp.dirname(sys.executable), 'lint-imports')
HEAVY = ('torch', 'torchvision', 'mmcv', 'mmengine', 'mmseg', 'mmdet',
         'mmpretrain', 'timm')


def lint_imports(root: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=root)
    return subprocess.run([LINT_IMPORTS, '--no-cache', '--config',
                           osp.join(root, '.importlinter')], cwd=root,
                          env=env, capture_output=True, text=True,
                          timeout=120)


def test_import_contract_is_kept():
    res = lint_imports(REPO)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-2000:]
    assert '2 kept, 0 broken' in res.stdout


@pytest.mark.parametrize('module,line,broken', [
    # utils reaching up into the models
    ('utils/dist.py', 'from ..models import frozen', 'Layers'),
    # the core reaching torch through another module
    ('core/report.py', 'from ..utils import checkpoint', 'torch-free'),
])
def test_import_contract_catches_a_wrong_import(tmp_path, module, line,
                                                broken):
    shutil.copytree(PACKAGE, tmp_path / 'cardamage_mmseg',
                    ignore=shutil.ignore_patterns('__pycache__', '.mim'))
    shutil.copy(osp.join(REPO, '.importlinter'), tmp_path)
    path = tmp_path / 'cardamage_mmseg' / module
    path.write_text(path.read_text() + f'\n{line}  # noqa\n')
    res = lint_imports(str(tmp_path))
    assert res.returncode != 0
    assert f'{broken}' in res.stdout and 'BROKEN' in res.stdout


def test_core_and_package_import_without_torch():
    """Also the exported models' runtime and what a slim install runs of
    apis/ and cli/ (DamageSegmenter's import is lazy)."""
    code = ('import sys, cardamage_mmseg, cardamage_mmseg.core\n'
            'import cardamage_mmseg.utils, cardamage_mmseg.runtime\n'
            'import cardamage_mmseg.apis, cardamage_mmseg.cli.main\n'
            'import cardamage_mmseg.cli.flags\n'
            f'heavy = sorted(m for m in sys.modules if m.split(".")[0] in '
            f'{HEAVY!r})\n'
            'print("HEAVY", heavy)\n')
    res = subprocess.run([sys.executable, '-c', code], cwd=REPO,
                         capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    assert 'HEAVY []' in res.stdout, res.stdout


def _library_modules():
    for path in sorted(glob.glob(osp.join(PACKAGE, '**', '*.py'),
                                 recursive=True)):
        rel = osp.relpath(path, PACKAGE)
        if not rel.startswith('cli' + os.sep):
            yield rel, ast.parse(open(path, encoding='utf-8').read())


def test_library_never_exits_or_parses_arguments():
    found = []
    for rel, tree in _library_modules():
        for node in ast.walk(tree):
            if isinstance(node, ast.Name) and node.id in ('SystemExit',
                                                          'argparse'):
                found.append(f'{rel}:{node.lineno} {node.id}')
            elif isinstance(node, ast.Attribute) and node.attr == 'exit' \
                    and getattr(node.value, 'id', '') == 'sys':
                found.append(f'{rel}:{node.lineno} sys.exit')
            elif isinstance(node, (ast.Import, ast.ImportFrom)):
                names = [a.name for a in node.names] + [
                    getattr(node, 'module', None) or '']
                if 'argparse' in names:
                    found.append(f'{rel}:{node.lineno} import argparse')
    assert not found, found


def test_no_function_level_imports_of_the_package():
    """A function-level import of the project's own modules is how a cycle
    gets dodged; with layers, every such import can sit at the top."""
    found = []
    for rel, tree in _library_modules():
        for func in ast.walk(tree):
            if not isinstance(func, (ast.FunctionDef,
                                     ast.AsyncFunctionDef)):
                continue
            for node in ast.walk(func):
                if isinstance(node, ast.ImportFrom) and (
                        node.level or (node.module or '').startswith(
                            'cardamage_mmseg')):
                    found.append(f'{rel}:{node.lineno}')
                elif isinstance(node, ast.Import) and any(
                        a.name.startswith('cardamage_mmseg')
                        for a in node.names):
                    found.append(f'{rel}:{node.lineno}')
    assert not found, found


@pytest.mark.parametrize('old_module,name,new_module,new_name', [
    ('cardamage_mmseg.utils.config', 'load_tool_config',
     'cardamage_mmseg.cli.config', 'load_tool_config'),
    ('cardamage_mmseg.models.segmentors', 'build_member',
     'cardamage_mmseg.models.frozen', 'load_frozen_model'),
    ('cardamage_mmseg.models.segmentors.ensemble', 'build_member',
     'cardamage_mmseg.models.frozen', 'load_frozen_model'),
    ('cardamage_mmseg.datasets.converters.common', 'save_mask',
     'cardamage_mmseg.core.masks', 'save_mask'),
    ('cardamage_mmseg.visualization', 'overlay',
     'cardamage_mmseg.core.overlay', 'overlay'),
    ('cardamage_mmseg.utils.io', 'atomic_write',
     'cardamage_mmseg.core.files', 'atomic_write'),
])
def test_moved_names_keep_a_deprecated_alias(old_module, name, new_module,
                                             new_name):
    import importlib
    old = importlib.import_module(old_module)
    with pytest.warns(DeprecationWarning, match=f'{new_module}.{new_name}'):
        value = getattr(old, name)
    assert value is getattr(importlib.import_module(new_module), new_name)
    with pytest.raises(AttributeError):
        getattr(old, 'no_such_name')


def test_config_naming_the_old_package_still_registers(tmp_path):
    from cardamage_mmseg.utils.config import load_config
    path = tmp_path / 'old.py'
    base = osp.join(REPO, 'configs', 'segformer_b0_cardamage.py')
    path.write_text(
        f"_base_ = [{base!r}]"
        "\ncustom_imports = dict(imports=['cardamage_mmseg'], "
        "allow_failed_imports=False)\n")
    with pytest.warns(DeprecationWarning, match='cardamage_mmseg.register'):
        cfg = load_config(str(path))
    assert cfg.custom_imports.imports == ['cardamage_mmseg.register']


def test_packaged_config_names_resolve():
    from cardamage_mmseg.utils.config import (ConfigError, load_config,
                                              packaged_config_dir)
    assert osp.samefile(packaged_config_dir(), osp.join(REPO, 'configs'))
    cfg = load_config('cardamage_mmseg::segformer_b0_cardamage.py')
    assert cfg.model.decode_head.num_classes == 2
    with pytest.raises(ConfigError, match='nope.py not found'):
        load_config('cardamage_mmseg::nope.py')
    with pytest.raises(FileNotFoundError):  # also a FileNotFoundError
        load_config(osp.join(REPO, 'configs', 'nope.py'))


def test_damage_segmenter_raises_catchable_config_errors(tmp_path):
    """A bad config used to exit the interpreter from inside the API
    (SystemExit passes ``except Exception``); now it is a ConfigError."""
    from cardamage_mmseg.apis import DamageSegmenter
    from cardamage_mmseg.utils.config import ConfigError
    seg = osp.join(REPO, 'configs', 'segformer_b0_cardamage.py')
    with pytest.raises(ConfigError, match='num_classes=5 but'):
        DamageSegmenter(seg, 'unused.pth',
                        cfg_options={'model.decode_head.num_classes': 5})
    with pytest.raises(ConfigError, match='not found'):
        DamageSegmenter(str(tmp_path / 'missing.py'), 'unused.pth')
    try:  # what an API caller writes
        DamageSegmenter(seg, None)
    except Exception as err:
        assert isinstance(err, ConfigError) and 'checkpoint' in str(err)
    else:
        raise AssertionError('no error for a missing checkpoint')


def test_missing_optional_package_is_catchable(monkeypatch):
    from cardamage_mmseg.utils import config as config_utils
    real = config_utils.importlib.util.find_spec
    monkeypatch.setattr(config_utils.importlib.util, 'find_spec',
                        lambda mod, *a: None if mod == 'mmdet' else
                        real(mod, *a))
    from cardamage_mmseg.apis import DamageSegmenter
    with pytest.raises(config_utils.ConfigError, match='mmdet: needed by'):
        DamageSegmenter(osp.join(REPO, 'configs',
                                 'mask2former_swin-t_cardamage.py'), 'x')


def test_tool_maps_a_config_error_to_exit_code_2(tmp_path):
    from conftest import run_tool
    res = run_tool('tools/train.py',
                   osp.join(REPO, 'configs', 'segformer_b0_cardamage.py'),
                   '--work-dir', str(tmp_path), '--cfg-options',
                   'model.decode_head.num_classes=5')
    assert res.returncode == 2, res.stderr[-2000:]
    assert 'error: ' in res.stderr and 'num_classes=5 but' in res.stderr
    assert 'Traceback' not in res.stderr


@pytest.mark.slow
def test_api_runs_from_a_wheel_installed_outside_the_checkout(tmp_path):
    """Build the wheel, install it into a folder of its own and segment a
    bundled photo from another working directory with a packaged config
    (``cardamage_mmseg::``): no file of the checkout is used."""
    import torch
    from cardamage_mmseg.zoo import build_baseline
    wheels, target = tmp_path / 'wheels', tmp_path / 'site'
    pip = [sys.executable, '-m', 'pip']
    res = subprocess.run(pip + ['wheel', '--no-deps', '--no-build-isolation',
                                '-q', '-w', str(wheels), REPO],
                         capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stderr[-3000:]
    [wheel] = glob.glob(str(wheels / '*.whl'))
    res = subprocess.run(pip + ['install', '--no-deps', '-q', '--target',
                                str(target), wheel],
                         capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stderr[-3000:]
    assert (target / 'cardamage_mmseg' / '.mim' / 'configs' / '_base_' /
            'losses' / 'ce-dice.py').is_file()
    ckpt = tmp_path / 'b0.pth'
    torch.manual_seed(0)
    torch.save({'state_dict': build_baseline('segformer_b0').state_dict()},
               ckpt)
    photo = osp.join(REPO, 'data', 'demo', 'car-damage-detector', 'dataset',
                     'val', '1.jpg')
    code = (
        'import cardamage_mmseg\n'
        'from cardamage_mmseg.apis import DamageSegmenter\n'
        'seg = DamageSegmenter("cardamage_mmseg::segformer_b0_cardamage.py",'
        f' {str(ckpt)!r})\n'
        f'[r] = seg({photo!r})\n'
        'print("FROM", cardamage_mmseg.__file__)\n'
        'print("MASK", r.mask.shape, r.report["width"])\n')
    work = tmp_path / 'elsewhere'
    work.mkdir()
    env = dict(os.environ, PYTHONPATH=str(target))
    res = subprocess.run([sys.executable, '-c', code], cwd=work, env=env,
                         capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stderr[-3000:]
    assert f'FROM {target}' in res.stdout, res.stdout
    from PIL import Image
    width, height = Image.open(photo).size
    assert f'MASK ({height}, {width}) {width}' in res.stdout, res.stdout
