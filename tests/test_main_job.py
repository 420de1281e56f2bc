"""The main job (demo/main_job.py, the README's first command) end to end, at toy size."""
from __future__ import annotations

import json
from pathlib import Path

from tests.helpers import load_script

TOY = ['--num-train', '12', '--num-test', '4', '--iters', '3', '--pretrain-epochs', '1',
       '--distortions', 'jpeg', '--severities', '2', '--models', 'pow', '--jobs', '1',
       '--grid-images', '1']


def test_main_job_pretrains_trains_sweeps_and_reuses(tmp_path: Path, capsys) -> None:
    job = load_script('demo/main_job.py')
    out = tmp_path / 'demo'
    summary = job.main(['--out-dir', str(out), *TOY])

    # backbone pretraining on object crops, exported and loaded by the detector
    pre = summary['pretrained']['pow']
    assert Path(pre['backbone']).is_file() and pre['num_train_crops'] > 0
    assert 0.0 <= pre['top1'] <= 100.0 and pre['epochs'] == 1
    log = (out / 'logs' / 'pow.log').read_text()
    assert f'load model from: {pre["backbone"]}' in log
    # clean + one distortion evaluated, figures and summary written
    result = summary['summary']['pow']
    assert 0.0 <= result['P'] <= 1.0 and set(result['per_distortion']) == {'jpeg'}
    for key in ('robustness', 'grid_pow', 'summary'):
        assert Path(summary['written'][key]).is_file(), key
    assert json.loads((out / 'summary.json').read_text())['pretrained']['pow']['top1'] == pre['top1']
    printed = capsys.readouterr().out
    assert '| clean (P) |' in printed and 'top-1' in printed

    # a second run reuses the finished pretraining, training and sweep instead of redoing them
    again = job.main(['--out-dir', str(out), *TOY])
    log = (out / 'logs' / 'pow.log').read_text()
    assert f'reusing {pre["backbone"]}' in log and 'reusing ' + summary['written']['checkpoint_pow'] in log
    assert again['summary']['pow']['P'] == result['P']


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
