"""fq-det: feature quantization for distortion-robust object detection (an MMDetection plugin)."""
from pathlib import Path

from setuptools import find_packages, setup

HERE = Path(__file__).parent


def read_requirements(name: str) -> list:
    """Requirement lines of ``requirements/<name>``, comments and blanks dropped."""
    lines = (HERE / 'requirements' / name).read_text().splitlines()
    return [ln.split('#')[0].strip() for ln in lines if ln.split('#')[0].strip()]


version: dict = {}
exec((HERE / 'fq_det' / 'version.py').read_text(), version)

setup(
    name='fq-det',
    version=version['__version__'],
    description='Feature quantization (SF, POW, HPOW) for distortion-robust detectors in MMDetection',
    long_description=(HERE / 'README.md').read_text(encoding='utf-8'),
    long_description_content_type='text/markdown',
    packages=find_packages(include=['fq_det', 'fq_det.*']),
    # the POW kernels' C source, compiled at first use (fq_det/models/quantizers/kernels.py)
    package_data={'fq_det.models.quantizers': ['csrc/*.c']},
    python_requires='>=3.10',
    # torch, mmcv (built from source), mmengine and mmdet are installed by
    # scripts/install.sh: pip cannot build mmcv's ops for this torch on its own.
    install_requires=read_requirements('runtime.txt'),
    extras_require={'tests': read_requirements('tests.txt'),
                    'optional': read_requirements('optional.txt')},
    license='Apache-2.0',
)
