"""The main job (demo/main_job.py, the README's first command) end to end, at toy size."""
from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from helpers import load_script

TOY = ['--num-train', '12', '--num-test', '4', '--iters', '3', '--pretrain-epochs', '1',
       '--distortions', 'jpeg', '--severities', '2', '--models', 'pow', '--jobs', '1',
       '--grid-images', '1']


@pytest.mark.slow
def test_main_job_pretrains_trains_sweeps_and_reuses(tmp_path: Path, capsys) -> None:
    job = load_script('demo/main_job.py')
    out = tmp_path / 'demo'
    summary = job.main(['--out-dir', str(out), *TOY])

    # backbone pretraining on object crops, exported and loaded by the detector
    pre = summary['pretrained']['pow']
    assert Path(pre['backbone']).is_file()
    assert 0.0 <= pre['top1'] <= 100.0 and pre['epochs'] == 1
    log = (out / 'logs' / 'pow.log').read_text()
    assert f'load model from: {pre["backbone"]}' in log
    # clean + one distortion evaluated, figures and summary written
    result = summary['summary']['pow']
    assert 0.0 <= result['P'] <= 1.0 and set(result['per_distortion']) == {'jpeg'}
    for key in ('robustness', 'grid_pow', 'summary'):
        assert Path(summary['written'][key]).is_file(), key
    assert json.loads((out / 'summary.json').read_text())['pretrained']['pow']['top1'] == pre['top1']
    console = capsys.readouterr()
    printed = console.out
    assert '| clean (P) |' in printed and 'top-1' in printed
    # the console: the step lines and the model's progress; the libraries' output is in the logs
    steps = [ln for ln in printed.splitlines() if ln.startswith('[')]
    assert [ln[:5] for ln in steps] == ['[1/4]', '[2/4]', '[4/4]']
    assert 'ResNet-18+POW-1: sweep (2 pairs)' in printed  # the stage at the end, at least
    assert 'Iter(train)' not in printed + console.err and 'Loads checkpoint' not in printed
    assert 'Iter(train) [3/3]' in log

    # a second run reuses the finished pretraining, training and sweep instead of redoing them
    again = job.main(['--out-dir', str(out), *TOY])
    log = (out / 'logs' / 'pow.log').read_text()
    assert f'reusing {pre["backbone"]}' in log and 'reusing ' + summary['written']['checkpoint_pow'] in log
    assert again['summary']['pow']['P'] == result['P']

    # other settings are not silently mixed with the finished run: refused, or redone
    with pytest.raises(SystemExit) as exit_info:
        job.main(['--out-dir', str(out), *TOY, '--iters', '4'])
    assert exit_info.value.code == 2
    assert 'changed: schedule' in capsys.readouterr().err
    redone = job.main(['--out-dir', str(out), *TOY, '--iters', '4', '--overwrite'])
    assert redone['written']['checkpoint_pow'].endswith('iter_4.pth')
    assert not Path(summary['written']['checkpoint_pow']).exists()  # the old run was cleared
    assert json.loads(Path(redone['written']['results_pow']).read_text())['summary'] == \
        redone['summary']['pow']


def test_pretraining_configs_build_exactly_the_detectors_backbones() -> None:
    """The crops configs repeat the detectors' backbone settings; if they drift apart,
    ``Pretrained`` would load only part of the backbone (with a warning, not an error)."""
    from mmdet.registry import MODELS
    from mmengine.config import Config
    from mmengine.registry import init_default_scope

    init_default_scope('mmdet')
    job = load_script('demo/main_job.py')
    root = Path(__file__).resolve().parents[1]
    for name, (det_config, _) in job.MODELS.items():
        det = Config.fromfile(root / det_config).model.backbone
        cls = Config.fromfile(root / job.PRETRAIN[name]).model.backbone
        det_state = MODELS.build(dict(det, init_cfg=None)).state_dict()
        cls_state = MODELS.build(dict(cls, init_cfg=None)).state_dict()
        shapes = {k: v.shape for k, v in det_state.items()}
        assert shapes == {k: v.shape for k, v in cls_state.items()}, name
        assert det.get('quant_cfg') == cls.get('quant_cfg'), name
        assert det.get('stage_with_quant') == cls.get('stage_with_quant'), name


def test_progress_is_read_from_the_model_log(tmp_path: Path, monkeypatch) -> None:
    job = load_script('demo/main_job.py')
    clock = [1000.0]
    monkeypatch.setattr(job.time, 'time', lambda: clock[0])
    log = tmp_path / 'pow.log'
    log.write_text('old run\n')
    progress = job.ModelProgress('POW', log)
    assert progress.describe() == 'POW: starting'
    with open(log, 'a') as f:
        f.write(f'{job.STAGE} pretrain 6 epochs\n'
                '12/01 10:00:00 - mmengine - INFO - Epoch(train) [2][ 20/175]  lr: 1e-3  '
                'eta: 0:01:40  time: 0.1\n')
    progress.poll()
    assert progress.describe() == 'POW: pretrain (6 epochs) epoch 2 20/175, eta 0:01:40'
    with open(log, 'a') as f:
        f.write(f'{job.STAGE} train 1200 iterations\n'
                'Iter(train) [ 340/1200]  base_lr: 1e-3 eta: 1 day, 0:04:10  time: 0.3\n'
                'Iter(val) [1/30]  eta: 0:00:03\n')
    progress.poll()
    assert progress.describe() == 'POW: train (1200 iterations) 340/1200, eta 1 day, 0:04:10'
    with open(log, 'a') as f:
        f.write(f'{job.STAGE} sweep 36 pairs\npair 1/36: clean\n[>>  ] 3/60\r[>>> ] 4/60\n')
    progress.poll()
    clock[0] += 10  # the first pair took 10 s
    with open(log, 'a') as f:
        f.write('pair 2/36: jpeg 1\n')
    progress.poll()
    assert progress.describe() == 'POW: sweep (36 pairs) pair 2/36 jpeg 1, eta 0:05:50'


def test_progress_display_without_a_terminal_prints_stage_changes(tmp_path: Path) -> None:
    job = load_script('demo/main_job.py')
    log = tmp_path / 'plain.log'
    stream = io.StringIO()
    display = job.ProgressDisplay({'ResNet-18': log}, stream, interval=3600)
    display.refresh()
    display.refresh()  # nothing changed: nothing printed
    log.write_text(f'{job.STAGE} train 3 iterations\nIter(train) [1/3]  eta: 0:00:02\n')
    display.refresh()
    with open(log, 'a') as f:
        f.write(f'{job.STAGE} sweep 2 pairs\npair 1/2: clean\n')
    display.note('  ResNet-18 done (5 s)', finished='ResNet-18')  # the stage it reached first
    display.refresh()  # 'done' is not printed again
    assert stream.getvalue().splitlines() == [
        '  ResNet-18: starting', '  ResNet-18: train (3 iterations) 1/3, eta 0:00:02',
        '  ResNet-18: sweep (2 pairs) pair 1/2 clean', '  ResNet-18 done (5 s)']
    assert display.models[0].describe() == 'ResNet-18: done'


def test_progress_display_on_a_terminal_rewrites_one_line(tmp_path: Path) -> None:
    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    job = load_script('demo/main_job.py')
    log = tmp_path / 'pow.log'
    stream = Terminal()
    display = job.ProgressDisplay({'POW': log}, stream, interval=3600)
    log.write_text(f'{job.STAGE} train 9 iterations\nIter(train) [3/9]  eta: 0:00:06\n')
    display.refresh()
    display.note('  plain done (5 s)')  # a permanent line: the live line is cleared first
    with open(log, 'a') as f:
        f.write('Iter(train) [6/9]  eta: 0:00:03\n')
    display.refresh()
    live = '  POW: train (9 iterations) 3/9, eta 0:00:06'
    assert stream.getvalue() == ('\r' + live + '\r' + ' ' * len(live) + '\r' + '  plain done (5 s)\n'
                                 + '\r  POW: train (9 iterations) 6/9, eta 0:00:03')


def test_uninformative_library_warnings_are_filtered() -> None:
    import warnings
    load_script('demo/main_job.py')  # installs its filters when imported
    with warnings.catch_warnings(record=True) as shown:
        warnings.warn('pkg_resources is deprecated as an API. See https://...', UserWarning)
        warnings.warn('Warning: The bbox is out of bounds, the drawn bbox may not be in the image',
                      UserWarning)
        warnings.warn('fq-det: a warning that says something', UserWarning)
    assert [str(w.message) for w in shown] == ['fq-det: a warning that says something']


def test_side_by_side_prints_the_bootstrap_interval_of_each_difference() -> None:
    job = load_script('demo/main_job.py')
    summary = lambda p, j: dict(P=p, mPC=j, rPC=j / p, per_distortion=dict(jpeg=j))  # noqa: E731
    results = {'plain': dict(metric_key='pascal_voc/mAP', summary=summary(0.80, 0.50)),
               'pow': dict(metric_key='pascal_voc/mAP', summary=summary(0.78, 0.52))}
    boot = {'P': dict(low=-0.05, high=0.01), 'jpeg': dict(low=-0.01, high=0.06),
            'mPC': dict(low=-0.01, high=0.06), 'rPC': dict(low=0.0, high=0.1)}
    table = job.side_by_side(results, {'plain': 'ResNet-18', 'pow': '+POW-1'}, boot)
    assert 'POW - plain [95 % CI over test images]' in table
    assert '| clean (P) | 0.800 | 0.780 | -0.020 [-0.050, +0.010] |' in table
    assert '| jpeg | 0.500 | 0.520 | +0.020 [-0.010, +0.060] |' in table
    assert 'POW - plain |' in job.side_by_side(results, {'plain': 'a', 'pow': 'b'})
