"""Package definition of cardamage-mmseg.

``pip install cardamage-mmseg`` is the slim runtime of exported models
(numpy, Pillow, OpenCV, onnxruntime: no torch, no OpenMMLab). The
``train`` extra adds the pure-Python OpenMMLab stack, ``export`` what
``tools/export.py`` needs, ``hf`` transformers for the HuggingFace bridge. torch and mmcv (with compiled ops) are
deliberately in no extra: a plain ``pip install`` would build mmcv in an
isolated environment against a different torch. ``tools/install.sh``
installs everything in the right order; torch and mmcv are listed under the
``mim`` extra for ``mim install``.
"""
import os.path as osp
import shutil

from setuptools import find_packages, setup
from setuptools.command.build_py import build_py

HERE = osp.dirname(osp.abspath(__file__))


def parse_requirements(fname: str) -> list:
    """Read requirement lines, skipping comments and ``-r`` includes."""
    reqs = []
    with open(osp.join(HERE, fname), encoding='utf-8') as f:
        for line in f:
            line = line.split('#', 1)[0].strip()
            if line and not line.startswith('-'):
                reqs.append(line)
    return reqs


class BuildPyWithConfigs(build_py):
    """Ship ``configs/`` inside the package as ``cardamage_mmseg/.mim/
    configs`` (mmseg's layout), so a wheel installed anywhere finds them:
    ``load_config('cardamage_mmseg::segformer_b0_cardamage.py')``. A
    checkout (editable install) reads ``configs/`` itself."""

    def run(self) -> None:
        super().run()
        target = osp.join(self.build_lib, 'cardamage_mmseg', '.mim',
                          'configs')
        shutil.rmtree(target, ignore_errors=True)
        shutil.copytree(osp.join(HERE, 'configs'), target,
                        ignore=shutil.ignore_patterns('__pycache__'))


def opencv_requirement() -> str:
    """opencv-python if a build of it is installed (the training stack's),
    else the headless build: two of them in one environment overwrite each
    other's ``cv2`` (mmengine's setup.py picks the same way)."""
    from importlib import metadata
    for name in ('opencv-python', 'opencv-contrib-python',
                 'opencv-contrib-python-headless'):
        try:
            metadata.version(name)
            return name
        except metadata.PackageNotFoundError:
            continue
    return 'opencv-python-headless'


def get_version() -> str:
    scope: dict = {}
    with open(osp.join(HERE, 'cardamage_mmseg', 'version.py'),
              encoding='utf-8') as f:
        exec(compile(f.read(), 'version.py', 'exec'), scope)
    return scope['__version__']


setup(
    name='cardamage-mmseg',
    version=get_version(),
    description='Car-damage segmentation as an MMSegmentation 1.x extension',
    long_description=open(osp.join(HERE, 'README.md'), encoding='utf-8').read(),
    long_description_content_type='text/markdown',
    license='Apache-2.0',
    python_requires='>=3.8',
    packages=find_packages(
        exclude=('configs', 'tools', 'tools.*', 'tests', 'tests.*', 'data',
                 'benchmarks', 'benchmarks.*')),
    cmdclass={'build_py': BuildPyWithConfigs},
    package_data={'cardamage_mmseg.serve': ['static/*.html']},
    install_requires=parse_requirements('requirements/runtime.txt') +
    [opencv_requirement()],
    extras_require={
        'runtime': [],
        'train': parse_requirements('requirements/train.txt'),
        'export': parse_requirements('requirements/export.txt'),
        'serve': parse_requirements('requirements/serve.txt'),
        'hf': parse_requirements('requirements/hf.txt'),
        'optional': parse_requirements('requirements/optional.txt'),
        'tests': parse_requirements('requirements/tests.txt'),
        'mim': parse_requirements('requirements/mminstall.txt'),
    },
    zip_safe=False,
)
