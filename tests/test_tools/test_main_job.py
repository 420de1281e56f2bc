"""The main job (demo/main_job.py, the README's first command) end to end, at toy size: the
study configs/studies/main_job.py run by the studies package, its report and figures."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from helpers import load_script

TOY = ['--cfg-options', 'data.num_train=12', 'data.num_test=4', 'train.iters=3',
       'pretrain.epochs=1', 'distortions=[jpeg]', 'severities=[2]', 'bootstrap.replicates=20',
       '--jobs', '2', '--grid-images', '1']


@pytest.mark.slow
def test_main_job_pretrains_trains_sweeps_reports_and_reuses(tmp_path: Path, capsys) -> None:
    job = load_script('demo/main_job.py')
    out = tmp_path / 'demo'
    first = job.main(['--out-dir', str(out), *TOY])
    report = first['report']
    assert report['finished'] == 2 and report['missing'] == []
    run = json.loads((out / 'runs' / 'pow' / 'seed_0' / 'run.json').read_text())
    # backbone pretraining on object crops, exported and loaded by the detector
    backbone = run['pretrain']['backbone']
    assert Path(backbone).is_file() and run['pretrain']['epochs'] == 1
    log = (out / 'runs' / 'pow' / 'seed_0' / 'log.txt').read_text()
    assert f'load model from: {backbone}' in log and 'Iter(train) [3/3]' in log
    # clean + one distortion evaluated; the report, the curves and the grids written
    assert set(report['per_condition']) == {'plain/0', 'pow/0'}
    assert set(report['per_condition']['pow/0']['distorted']) == {'jpeg'}
    for name in ('robustness', 'grid_plain', 'grid_pow'):
        assert Path(first['figures'][name]).is_file(), name
    printed = capsys.readouterr().out
    md = (out / 'reports' / 'main_job' / 'study.md').read_text()
    assert md in printed  # the report is what the job prints at the end
    # one seed: the difference comes with its interval over test images, not a verdict
    boot = report['aggregate']['variants']['pow']['rows']['mPC']['bootstrap_per_seed'][0]
    assert boot['low'] <= boot['mean'] <= boot['high']
    assert f'(1 seed) [{boot["low"]:+.3f}, {boot["high"]:+.3f}] over test images' in md
    # the live progress line and the runs' ends, not the libraries' output
    assert '[0/2]' in printed and 'pow seed 0: done in' in printed
    assert 'Iter(train)' not in printed and 'Loads checkpoint' not in printed

    # a second run reuses every finished stage instead of redoing it
    again = job.main(['--out-dir', str(out), *TOY])
    assert '2/2 runs finished, 0 to run' in capsys.readouterr().out
    assert again['report']['per_condition'] == report['per_condition']

    # other settings are not silently mixed with the finished runs: refused, or redone
    longer = [*TOY[:3], 'train.iters=4', *TOY[4:]]
    with pytest.raises(SystemExit) as exit_info:
        job.main(['--out-dir', str(out), *longer, '--only', 'pow:0'])
    assert exit_info.value.code == 2
    assert 'pow seed 0 (changed: train schedule)' in capsys.readouterr().err
    job.main(['--out-dir', str(out), *longer, '--only', 'pow:0', '--overwrite'])
    train = out / 'runs' / 'pow' / 'seed_0' / 'train'
    assert (train / 'iter_4.pth').is_file() and not (train / 'iter_3.pth').exists()


def test_pretraining_configs_build_exactly_the_detectors_backbones() -> None:
    """The crops configs repeat the detectors' backbone settings; if they drift apart,
    ``Pretrained`` would load only part of the backbone (with a warning, not an error)."""
    from mmdet.registry import MODELS
    from mmengine.config import Config
    from mmengine.registry import init_default_scope

    from fq_det.studies import load_study

    init_default_scope('mmdet')
    root = Path(__file__).resolve().parents[2]
    study = load_study(str(root / 'configs/studies/main_job.py'))
    for name, variant in study.variants.items():
        det = Config.fromfile(variant.config).model.backbone
        cls = Config.fromfile(variant.pretrain).model.backbone
        det_state = MODELS.build(dict(det, init_cfg=None)).state_dict()
        cls_state = MODELS.build(dict(cls, init_cfg=None)).state_dict()
        shapes = {k: v.shape for k, v in det_state.items()}
        assert shapes == {k: v.shape for k, v in cls_state.items()}, name
        assert det.get('quant_cfg') == cls.get('quant_cfg'), name
        assert det.get('stage_with_quant') == cls.get('stage_with_quant'), name


def test_uninformative_library_warnings_are_filtered() -> None:
    import warnings
    load_script('demo/main_job.py')  # installs its filters when imported
    with warnings.catch_warnings(record=True) as shown:
        warnings.warn('pkg_resources is deprecated as an API. See https://...', UserWarning)
        warnings.warn('Warning: The bbox is out of bounds, the drawn bbox may not be in the image',
                      UserWarning)
        warnings.warn('fq-det: a warning that says something', UserWarning)
    assert [str(w.message) for w in shown] == ['fq-det: a warning that says something']
