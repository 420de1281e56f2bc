"""The robustness study runner end to end at toy size: plan, run, report, resume, refusals."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from fq_det.studies import (StudyError, changed_settings, load_study, plan_study,
                                    report_study, run_one, run_study)
from helpers import REPO

CROPS = 'configs/classification/synthvoc/resnet18_synthvoc-crops.py'
POW = {'model.backbone.type': 'mmdet.ResNetPOW',
       'model.backbone.quant_cfg': dict(num_splits=1, alpha_reg=dict(type='L1', weight=1e-4)),
       'model.backbone.stage_with_quant': (False, True, True, True),
       'custom_hooks': [dict(type='mmdet.AlphaRegularizationHook')]}


def _write_study(path: Path, **overrides) -> Path:
    study = dict(task='classification',
                 data=dict(type='synthvoc', num_train=8, num_test=3, image_size=(96, 72), seed=0),
                 variants=dict(plain=dict(config=str(REPO / CROPS)),
                               pow1=dict(config=str(REPO / CROPS), cfg_options=POW),
                               plain_bn=dict(train_as='plain',
                                             bn_adapt=dict(prior_strength=0, num_images=8))),
                 reference='plain', seeds=[0, 1], distortions=['jpeg', 'ngrn'], severities=[2],
                 train=dict(epochs=1), bootstrap=dict(replicates=50))
    study.update(overrides)
    path.write_text(f'study = {study!r}\n')
    return path


@pytest.fixture(scope='module')
def finished_study(tmp_path_factory):
    """The toy study with 4 of its 6 runs finished (pow1 and plain_bn seed 1 left out)."""
    root = tmp_path_factory.mktemp('study')
    cfg = _write_study(root / 'toy_study.py')
    study = load_study(str(cfg), str(root / 'work'))
    failures = run_study(study, jobs=2, only=[('plain_bn', 0), ('plain', 0), ('plain', 1),
                                              ('pow1', 0)])
    assert failures == []
    # the BN-adapted variant evaluated plain's trained model: trained once, not twice
    assert not (study.run_dir('plain_bn', 0) / 'train').exists()
    assert json.loads((study.run_dir('plain_bn', 0) / 'run.json').read_text())['trained_as'] == \
        'plain'
    return cfg, study


@pytest.mark.slow
def test_plan_run_report_and_missing_run(finished_study) -> None:
    cfg, study = finished_study
    commands = plan_study(study)
    assert len(commands) == 6 and all(str(cfg) in c and '--only' in c for c in commands)
    assert any(c.endswith('--only pow1:1') for c in commands)

    report = report_study(study)
    assert report['finished'] == 4 and report['total'] == 6
    assert any(m.startswith('pow1 seed 1: not finished') for m in report['missing'])
    md = (study.report_dir / 'study.md').read_text()
    assert 'pow1 seed 1: not finished' in md and 'Finished runs: 4/6' in md
    assert (study.report_dir / 'study.png').stat().st_size > 1000
    agg = report['aggregate']['variants']
    # plain has 2 seeds (an interval), pow1 one seed (no interval: no verdict either way)
    assert agg['plain']['rows']['P']['interval']['n'] == 2
    assert agg['pow1']['rows']['mPC']['verdict'] == 'no detectable difference'
    # every raw number per seed is in study.json
    saved = json.loads((study.report_dir / 'study.json').read_text())
    assert set(saved['per_condition']) == {'plain/0', 'plain/1', 'pow1/0', 'plain_bn/0'}
    assert saved['variants']['plain']['config'] == CROPS  # relative: valid in any clone
    # within seed 0, the image bootstrap of each difference to the reference
    boot = saved['aggregate']['variants']['pow1']['rows']['mPC']['bootstrap_per_seed']['0']
    assert boot['n'] == 50 and boot['low'] <= boot['high']
    assert set(saved['per_condition']['pow1/0']['distorted']) == {'jpeg', 'ngrn'}
    # the POW variant's exponents are reported per layer
    assert saved['alpha']['pow1'][-1]['layer'] == 'ALL'
    assert 0.0 <= saved['alpha']['pow1'][-1]['frac_moved'] <= 1.0
    assert 'plain' not in saved['alpha']


@pytest.mark.slow
def test_exported_results_resume_elsewhere(finished_study, tmp_path, repo_root) -> None:
    """The exported small files are enough: in a new folder, finished runs are not redone."""
    from fq_det.studies import export_results
    cfg, study = finished_study
    report_study(study)
    copied = export_results(study, tmp_path / 'copy')
    assert not any(p.suffix == '.pth' for p in copied)
    texts = [p.read_text() for p in copied if p.suffix in ('.json', '.md')]
    assert any('work_dirs/studies/' in t for t in texts)  # the checkpoint, the sweep folder
    for text in texts:  # nothing names the machine's folders: only paths inside a clone
        assert str(study.work_dir) not in text and str(repo_root) not in text
    elsewhere = load_study(str(cfg), str(tmp_path / 'copy'))
    report = report_study(elsewhere)
    assert report['finished'] == 4
    assert (elsewhere.report_dir / 'study.md').is_file()


@pytest.mark.slow
def test_resume_after_an_interrupted_run(finished_study) -> None:
    cfg, study = finished_study
    run_dir = study.run_dir('pow1', 0)
    ckpt = run_dir / 'train' / 'epoch_1.pth'
    mtime = ckpt.stat().st_mtime_ns
    # as if the process was killed during the sweep: no run.json, one sweep pair missing
    (run_dir / 'run.json').unlink()
    partial = json.loads((run_dir / 'sweep' / 'partial.json').read_text())
    dropped = [k for k in partial['records'] if k.startswith('ngrn/')]
    assert dropped
    for k in dropped:
        del partial['records'][k]
    (run_dir / 'sweep' / 'partial.json').write_text(json.dumps(partial))
    (run_dir / 'sweep' / 'results.json').unlink()
    assert run_study(study, jobs=1, only=[('pow1', 0)]) == []
    assert ckpt.stat().st_mtime_ns == mtime  # training was not redone
    assert (run_dir / 'run.json').is_file()
    assert 'ngrn' in json.loads((run_dir / 'sweep' / 'results.json').read_text())['distorted']


@pytest.mark.slow
def test_overwrite_redoes_nothing_that_did_not_change(finished_study) -> None:
    """--overwrite redoes the stages and sweeps made with other settings, not finished work
    of the same settings: no training, no sweep pair evaluated again."""
    cfg, study = finished_study
    run_dir = study.run_dir('plain', 0)
    watched = [run_dir / 'train' / 'epoch_1.pth',
               *sorted((run_dir / 'sweep' / 'per_image').glob('*.npz'))]
    assert len(watched) == 4  # the checkpoint, clean, jpeg and ngrn
    before = [f.stat().st_mtime_ns for f in watched]
    run_one(study, 'plain', 0, overwrite=True)
    assert [f.stat().st_mtime_ns for f in watched] == before


@pytest.mark.slow
def test_changed_settings_are_refused_not_reused(finished_study, tmp_path) -> None:
    cfg, study = finished_study
    changed = _write_study(tmp_path / 'toy_study.py', train=dict(epochs=2))
    other = load_study(str(changed), study.work_dir)
    with pytest.raises(StudyError, match='changed: schedule'):
        run_one(other, 'plain', 0)


@pytest.mark.slow
def test_finished_runs_of_other_settings_are_refused_and_not_reported(finished_study,
                                                                     tmp_path) -> None:
    """A finished run (run.json) is checked against the current settings too: ``run`` refuses
    it and ``report`` leaves it out, naming what changed, instead of reporting old numbers."""
    cfg, study = finished_study
    finished = [('plain', 0), ('pow1', 0), ('plain_bn', 0)]
    assert [changed_settings(study, v, s) for v, s in finished] == [[], [], []]
    heavier_l1 = dict(POW, **{'model.backbone.quant_cfg': dict(
        num_splits=1, alpha_reg=dict(type='L1', weight=1e-3))})
    changed = _write_study(
        tmp_path / 'toy_study.py',
        variants=dict(plain=dict(config=str(REPO / CROPS)),
                      pow1=dict(config=str(REPO / CROPS), cfg_options=heavier_l1),
                      plain_bn=dict(train_as='plain',
                                    bn_adapt=dict(prior_strength=0, num_images=4))))
    other = load_study(str(changed), study.work_dir)
    assert changed_settings(other, 'pow1', 0) == ['train config']
    assert changed_settings(other, 'plain_bn', 0) == ['bn_adapt']
    assert changed_settings(other, 'plain', 1) == []
    with pytest.raises(StudyError, match=r'pow1 seed 0 \(changed: train config\); '
                                         r'plain_bn seed 0 \(changed: bn_adapt\)\. Redo them '
                                         r'with --overwrite --only pow1:0 plain_bn:0'):
        run_study(other, jobs=1)
    report = report_study(other, str(tmp_path / 'report'))
    assert report['finished'] == 2  # plain seeds 0 and 1
    assert any(m.startswith('pow1 seed 0: made with other settings (changed: train config)')
               for m in report['missing'])
    saved = json.loads((tmp_path / 'report' / 'study.json').read_text())
    assert set(saved['per_condition']) == {'plain/0', 'plain/1'}  # no number of the old settings


@pytest.mark.slow
def test_a_run_that_evaluated_a_since_retrained_model_is_stale(finished_study, tmp_path) -> None:
    """plain_bn evaluated plain's model; once plain is retrained with other settings,
    plain_bn's numbers belong to the old model and must not pass as current."""
    import shutil

    from fq_det.studies.run_folder import train_key
    cfg, study = finished_study
    work = tmp_path / 'work'
    for variant in ('plain', 'plain_bn'):
        shutil.copytree(study.run_dir(variant, 0), work / 'runs' / variant / 'seed_0',
                        ignore=shutil.ignore_patterns('*.pth'))
    retrained = {'optim_wrapper.optimizer.lr': 1e-4}
    changed = _write_study(tmp_path / 'toy_study.py', variants=dict(
        plain=dict(config=str(REPO / CROPS), cfg_options=retrained),
        plain_bn=dict(train_as='plain', bn_adapt=dict(prior_strength=0, num_images=8))),
        seeds=[0])
    other = load_study(str(changed), str(work))
    # as `run --overwrite --only plain:0` leaves them: plain's records carry the new key
    for name in ('train/done.json', 'run.json'):
        path = other.run_dir('plain', 0) / name
        record = json.loads(path.read_text())
        key = record['key'] if 'key' in record else record['train_key']
        key['config'] = train_key(other, other.variants['plain'], 0, None)['config']
        path.write_text(json.dumps(record))
    assert changed_settings(other, 'plain', 0) == []
    assert changed_settings(other, 'plain_bn', 0) == ['train config']


@pytest.mark.parametrize('study_config', sorted((REPO / 'configs/studies').glob('*.py')),
                         ids=lambda p: p.stem)
def test_committed_results_match_the_configs_in_the_repo(study_config: Path) -> None:
    """Every finished run under results/studies/ was made with the configs as they are now:
    with what a variant's config reads after its ``_base_`` files and ``cfg_options`` (a
    rename or a comment edit changes nothing; a changed value needs its runs redone)."""
    study = load_study(str(study_config))
    folder = REPO / 'results' / 'studies' / Path(study.default_work_dir).name
    if not folder.is_dir():
        pytest.skip(f'no committed results for {study_config.name}')
    study = load_study(str(study_config), str(folder))
    finished = [r for r in study.runs() if (study.run_dir(*r) / 'run.json').is_file()]
    if not finished:  # a study whose runs are not committed yet shares a committed folder
        pytest.skip(f'no committed run of {study_config.name} in {folder}')
    stale = {f'{v}:{s}': changed_settings(study, v, s) for v, s in finished}
    assert {r: c for r, c in stale.items() if c} == {}


def test_alpha_report_on_known_alphas(tmp_path) -> None:
    from mmengine.config import Config

    from fq_det.studies.stages import alpha_report
    from mmengine.registry import MODELS, init_default_scope
    cfg = Config.fromfile(str(REPO / CROPS))
    cfg.merge_from_dict(POW)
    init_default_scope(cfg.default_scope)
    model = MODELS.build(cfg.model)
    alphas = [p for n, p in model.named_parameters() if n.endswith('.alpha')]
    with torch.no_grad():
        for i, p in enumerate(alphas):
            p.copy_(torch.linspace(-0.2, 0.2, p.numel()).reshape(p.shape) if i == 0 else
                    torch.full_like(p, 0.05))
    ckpt = tmp_path / 'pow.pth'
    torch.save(dict(state_dict=model.state_dict()), ckpt)
    rows = alpha_report(cfg, str(ckpt))
    first = np.linspace(-0.2, 0.2, alphas[0].numel())
    assert rows[0]['mean'] == pytest.approx(0.0, abs=1e-7)
    assert rows[0]['frac_moved'] == pytest.approx((np.abs(first) > 0.1).mean())
    assert rows[1]['mean'] == pytest.approx(0.05) and rows[1]['frac_moved'] == 0.0
    assert rows[-1]['layer'] == 'ALL' and rows[-1]['count'] == sum(p.numel() for p in alphas)
    plain = Config.fromfile(str(REPO / CROPS))
    assert alpha_report(plain, str(ckpt)) is None  # no exponents in a plain model


def test_alpha_report_reads_the_quantizer_from_quant_cfg(tmp_path) -> None:
    """The small networks name POW in ``quant_cfg.type``, not in the backbone type."""
    from mmengine.config import Config
    from mmengine.registry import MODELS, init_default_scope

    from fq_det.studies.stages import alpha_report
    cfg = Config.fromfile(str(REPO / 'configs/classification/synthvoc/smallnet_synthvoc-crops.py'))
    cfg.merge_from_dict({'model.backbone.quant_cfg': dict(type='POW', num_splits=2,
                                                          exponent='direct')})
    init_default_scope(cfg.default_scope)
    model = MODELS.build(cfg.model)
    alphas = [p for n, p in model.named_parameters() if n.endswith('.alpha')]
    with torch.no_grad():
        for p in alphas:
            p.fill_(0.25)
    ckpt = tmp_path / 'smallnet_pow.pth'
    torch.save(dict(state_dict=model.state_dict()), ckpt)
    rows = alpha_report(cfg, str(ckpt))
    assert rows[-1]['layer'] == 'ALL' and rows[-1]['count'] == sum(p.numel() for p in alphas)
    assert rows[-1]['p_mean'] == pytest.approx(0.25) and rows[-1]['frac_quantizing'] == 1.0


@pytest.mark.parametrize('override, message', [
    (dict(variants=dict(a=dict(config='configs/nope.py'))), 'config file not found'),
    (dict(reference='missing'), 'reference must name one of the variants'),
    (dict(seeds=[]), 'seeds must be a non-empty list'),
    (dict(distortions=['fog_of_war']), 'fog_of_war'),
    (dict(severities=[9]), 'severity'),
    (dict(task='segmentation'), 'task must be one of'),
    (dict(variants=dict(plain=dict(config=CROPS, cfg_option={}))), "unknown key\\(s\\) 'cfg_option'"),
    (dict(seen_distortions=['salt_pepper']), 'not among the distortions'),
    (dict(variants=dict(plain=dict(config=CROPS), bn=dict(train_as='nope'))), 'train_as must name'),
    (dict(variants=dict(plain=dict(config=CROPS), bn=dict(train_as='plain', config=CROPS))),
     'cannot set its own config'),
    (dict(variants=dict(plain=dict(config=CROPS),
                        bn=dict(train_as='plain', bn_adapt=dict(prior_strength=-1)))),
     'prior_strength must be a number >= 0'),
])
def test_bad_study_configs_are_refused_before_training(tmp_path, override, message) -> None:
    cfg = _write_study(tmp_path / 'bad.py', **override)
    with pytest.raises(StudyError, match=message):
        load_study(str(cfg), str(tmp_path / 'work'))
    assert not (tmp_path / 'work').exists()


def test_seen_and_unseen_distortions_are_reported_apart(finished_study, tmp_path) -> None:
    cfg, study = finished_study
    marked = _write_study(tmp_path / 'toy_study.py', seen_distortions=['ngrn'])
    other = load_study(str(marked), study.work_dir)
    report = report_study(other, str(tmp_path / 'report'))
    rows = report['aggregate']['rows']
    assert 'mPC seen' in rows and 'mPC unseen' in rows
    plain = report['per_run_rows']['plain/0']
    assert plain['mPC seen'] == pytest.approx(plain['ngrn'])
    assert plain['mPC unseen'] == pytest.approx(plain['jpeg'])
    md = (tmp_path / 'report' / 'study.md').read_text()
    assert '| ngrn (seen) |' in md and '| jpeg (unseen) |' in md


def test_study_configs_in_the_repo_load() -> None:
    """Every study config loads; the studies that answer a question use at least 3 seeds
    (the main job is the one-seed demo)."""
    for path in sorted((REPO / 'configs' / 'studies').glob('*.py')):
        study = load_study(str(path))
        assert study.reference in study.variants, path
        assert len(study.seeds) >= 3 or study.name == 'main_job', path


def test_tool_reports_bad_study_config_in_one_line(tmp_path, capsys) -> None:
    from helpers import load_script
    tool = load_script('tools/robustness_study.py')
    bad = _write_study(tmp_path / 'bad.py', seeds=[])
    with pytest.raises(SystemExit) as exit_info:
        tool.main(['plan', str(bad)])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith('error: ') and 'seeds must be a non-empty list' in err
    assert 'Traceback' not in err
    good = _write_study(tmp_path / 'good.py')
    assert tool.main(['plan', str(good), '--work-dir', str(tmp_path / 'w')]) == 0
    assert capsys.readouterr().out.count('--only') == 6


def test_an_unfinished_stage_of_other_settings_is_not_resumed(tmp_path) -> None:
    """A stage interrupted under one key is refused under another; --overwrite empties it
    first, so no checkpoint of other settings is resumed; a finished stage of the same key
    is reused without running its work."""
    from fq_det.studies.run_folder import run_stage
    stage = tmp_path / 'train'

    def interrupted() -> dict:
        (stage / 'iter_100.pth').write_bytes(b'checkpoint of seed 0')
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_stage(stage, dict(seed=0, config='a.py'), False, interrupted, tmp_path)
    seen = []

    def resumed() -> dict:
        seen.append((stage / 'iter_100.pth').is_file())
        return dict(top1=1.0)

    assert run_stage(stage, dict(seed=0, config='a.py'), False, resumed, tmp_path) == (
        dict(key=dict(seed=0, config='a.py'), top1=1.0), False)
    assert seen == [True]  # same key: resumed from the checkpoint
    assert run_stage(stage, dict(seed=0, config='a.py'), False,
                     lambda: pytest.fail('a finished stage ran again'), tmp_path)[1] is True
    (stage / 'done.json').unlink()
    with pytest.raises(StudyError, match=r'unfinished run of other settings \(changed: seed\)'):
        run_stage(stage, dict(seed=1, config='a.py'), False, resumed, tmp_path)
    assert (stage / 'iter_100.pth').is_file()
    run_stage(stage, dict(seed=1, config='a.py'), True, lambda: {}, tmp_path)
    assert not (stage / 'iter_100.pth').exists()
    assert json.loads((stage / 'started.json').read_text())['key']['seed'] == 1
    with pytest.raises(StudyError, match=r'was made with other settings \(changed: seed\)'):
        run_stage(stage, dict(seed=2, config='a.py'), False, resumed, tmp_path)


def test_portable_paths_rewrite_whole_folders_only() -> None:
    from fq_det.studies import portable_paths
    text = '"/data/x/runs/a.pth", "/data/x_old/runs/b.pth", "/repo/configs/c.py"'
    assert portable_paths(text, {'/data/x/': 'work_dirs/studies/x/', '/repo/': ''}) == \
        '"work_dirs/studies/x/runs/a.pth", "/data/x_old/runs/b.pth", "configs/c.py"'


@pytest.mark.parametrize('override', [
    dict(variants=dict(plain=dict(config=CROPS), **{'../../../escape_v': dict(config=CROPS)})),
    dict(variants=dict(plain=dict(config=CROPS), **{'/tmp/abs': dict(config=CROPS)})),
    dict(variants=dict(plain=dict(config=CROPS), **{'': dict(config=CROPS)})),
    dict(variants=dict(plain=dict(config=CROPS), **{'.': dict(config=CROPS)})),
    dict(variants=dict(plain=dict(config=CROPS), **{'..': dict(config=CROPS)})),
    dict(variants=dict(plain=dict(config=CROPS), **{'a/b': dict(config=CROPS)})),
    dict(name='../../../x'), dict(name=''), dict(name='a/b'), dict(runs='../elsewhere'),
], ids=['up', 'absolute', 'empty', 'dot', 'dotdot', 'slash', 'study_up', 'study_empty',
        'study_slash', 'runs_up'])
def test_names_that_leave_the_work_folder_are_refused(tmp_path, override) -> None:
    cfg = _write_study(tmp_path / 'bad.py', **override)
    with pytest.raises(StudyError, match=r'(variant name|name|runs) must be a plain folder name '
                                         r'\(\[A-Za-z0-9_\.-\]\+, not \. or \.\.\)'):
        load_study(str(cfg), str(tmp_path / 'work'))
    assert not (tmp_path / 'work').exists()


def test_paths_outside_the_work_folder_are_refused_before_writing(tmp_path) -> None:
    """Also for a Study made without load_study: no run folder, report folder or stage reset
    outside the work folder."""
    import dataclasses

    from fq_det.studies.run_folder import run_stage
    study = load_study(str(_write_study(tmp_path / 'toy.py')), str(tmp_path / 'work'),
                       check_configs=False)
    with pytest.raises(StudyError, match='outside the study folder'):
        study.run_dir('../../escape_v', 0)
    with pytest.raises(StudyError, match='outside the study folder'):
        dataclasses.replace(study, name='../../x').report_dir
    outside = tmp_path / 'outside'
    (outside / 'keep').mkdir(parents=True)
    (outside / 'started.json').write_text(json.dumps(dict(key=dict(seed=0))))
    with pytest.raises(StudyError, match='outside the study folder'):
        run_stage(outside, dict(seed=1), True, dict, Path(study.work_dir))
    assert (outside / 'keep').is_dir()  # nothing removed
    assert json.loads((outside / 'started.json').read_text())['key'] == dict(seed=0)
    assert study.run_dir('plain', 0) == Path(study.work_dir) / 'runs' / 'plain' / 'seed_0'


_SYNTH = dict(type='synthvoc', num_train=8, num_test=3, seed=0)


@pytest.mark.parametrize('override, message', [
    (dict(train=dict(epoch=1)), r"train: unknown key\(s\) 'epoch'; valid keys: epochs"),
    (dict(train=dict(iters=100)), r"train: unknown key\(s\) 'iters'; valid keys: epochs"),
    (dict(train=dict(epochs=0)), 'train.epochs must be a positive int, got 0'),
    (dict(train=dict(epochs=True)), 'train.epochs must be a positive int, got True'),
    (dict(train=3), r'train must be a dict\(epochs=...\), got 3'),
    (dict(pretrain=dict(epochs=-1)), 'pretrain.epochs must be a positive int, got -1'),
    (dict(pretrain=dict(iters=5)), r"pretrain: unknown key\(s\) 'iters'"),
    (dict(bootstrap=dict(confidence=2)), r'bootstrap.confidence must be a number in \(0, 1\)'),
    (dict(bootstrap=dict(confidence=0)), r'bootstrap.confidence must be a number in \(0, 1\)'),
    (dict(bootstrap=dict(replicates=True)), 'bootstrap.replicates must be an int >= 0'),
    (dict(bootstrap=dict(replicates=-1)), 'bootstrap.replicates must be an int >= 0'),
    (dict(bootstrap=dict(replicate=10)), r"bootstrap: unknown key\(s\) 'replicate'"),
    (dict(data=dict(_SYNTH, image_size='big')),
     "data.image_size must be two positive ints .*'big'"),
    (dict(data=dict(_SYNTH, image_size=(160, 0))), 'data.image_size must be two positive ints'),
    (dict(data=dict(_SYNTH, image_size=(160, ))), 'data.image_size must be two positive ints'),
    (dict(data=[1]), 'data must be dict'),
    (dict(distortions=[]), 'distortions is empty'),
    (dict(severities=3), 'severities must be a list of severities 1-5'),
    (dict(variants=dict(plain=dict(config=CROPS, cfg_options=['a=1']))),
     r"variant 'plain': cfg_options must be a dict of dotted keys .*\['a=1'\]"),
    (dict(variants=dict(plain=dict(config=CROPS),
                        pow1=dict(config=CROPS, cfg_options={'model.backbone.type':
                                                             'mmdet.ResNetPWO'}))),
     r"variant 'pow1': cfg_options model.backbone.type: unknown backbone type "
     r"'mmdet.ResNetPWO' \(did you mean 'ResNetPOW'"),
])
def test_bad_study_keys_are_refused_naming_the_key(tmp_path, override, message) -> None:
    cfg = _write_study(tmp_path / 'bad.py', **override)
    with pytest.raises(StudyError, match=message):
        load_study(str(cfg), str(tmp_path / 'work'))
    assert not (tmp_path / 'work').exists()


def test_detection_studies_set_iters_not_epochs(tmp_path) -> None:
    cfg = _write_study(tmp_path / 'det.py', task='detection', train=dict(epochs=2))
    with pytest.raises(StudyError, match=r"train: unknown key\(s\) 'epochs'; valid keys: iters"):
        load_study(str(cfg), str(tmp_path / 'work'), check_configs=False)
    cfg = _write_study(tmp_path / 'det.py', task='detection', train=dict(iters=20))
    assert load_study(str(cfg), str(tmp_path / 'work'), check_configs=False).train == \
        dict(iters=20)


@pytest.mark.parametrize('text, message', [
    ('study = dict(task=\n', r"bad\.py: syntax error in the study config: .* \(line 1\)"),
    ('study = [1]\n', r'bad\.py: study must be a dict\(task=..., variants=..., ...\), got list'),
    ('study = dict(task=undefined_name)\n', r'bad\.py: cannot read the study config: NameError'),
])
def test_unreadable_study_files_are_named(tmp_path, capsys, text, message) -> None:
    from helpers import load_script
    bad = tmp_path / 'bad.py'
    bad.write_text(text)
    with pytest.raises(StudyError, match=message):
        load_study(str(bad))
    with pytest.raises(SystemExit) as exit_info:
        load_script('tools/robustness_study.py').main(['plan', str(bad)])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith('error: ') and 'Traceback' not in err and str(bad) in err


@pytest.mark.slow
def test_a_one_seed_variant_is_reported_without_intervals(finished_study, tmp_path) -> None:
    """One seed is accepted (a quick look); the report says its intervals are missing."""
    cfg, study = finished_study
    report_study(study, str(tmp_path / 'report'))
    md = (tmp_path / 'report' / 'study.md').read_text()
    assert ('Confidence intervals over seeds need at least 2 seeds; with one finished seed '
            '(pow1, plain_bn) the values below have no interval and no verdict') in md
    assert '(1 seed) =' in md


def _copied_study(finished_study, tmp_path: Path):
    """The finished runs of ``finished_study`` (without checkpoints) in a new work folder."""
    import shutil
    cfg, study = finished_study
    work = tmp_path / 'work'
    for v, s in study.runs():
        if (study.run_dir(v, s) / 'run.json').is_file():
            shutil.copytree(study.run_dir(v, s), work / 'runs' / v / f'seed_{s}',
                            ignore=shutil.ignore_patterns('*.pth'))
    return load_study(str(cfg), str(work))


@pytest.mark.slow
def test_a_missing_records_file_is_rebuilt_by_run(finished_study, tmp_path) -> None:
    """`run` writes a finished run's deleted records.npz again from sweep/per_image/, so the
    within-run bootstrap keeps every seed."""
    study = _copied_study(finished_study, tmp_path)
    records = study.run_dir('pow1', 0) / 'records.npz'
    before = np.load(records)['clean/correct']
    records.unlink()
    assert run_study(study, jobs=1, only=[('pow1', 0), ('plain', 0)]) == []  # both finished
    assert records.is_file() and np.array_equal(np.load(records)['clean/correct'], before)
    report = report_study(study)
    assert report['missing_records'] == []
    assert 0 in report['aggregate']['variants']['pow1']['rows']['mPC']['bootstrap_per_seed']


@pytest.mark.slow
def test_a_run_without_any_per_image_records_is_listed_missing(finished_study, tmp_path) -> None:
    """Without records.npz and sweep/per_image/, the run is listed as missing from the
    within-run bootstrap instead of that table silently averaging over fewer seeds."""
    import shutil
    study = _copied_study(finished_study, tmp_path)
    (study.run_dir('plain_bn', 0) / 'records.npz').unlink()
    shutil.rmtree(study.run_dir('plain_bn', 0) / 'sweep' / 'per_image')
    report = report_study(study)
    assert [m.split(':')[0] for m in report['missing_records']] == ['plain_bn seed 0']
    assert 0 not in report['aggregate']['variants']['plain_bn']['rows']['mPC'].get(
        'bootstrap_per_seed', {})
    assert report['finished'] == 4  # its other numbers are all there
    # pow1 seed 0 still has its bootstrap: one run without records leaves the others alone
    assert '0' in json.loads((study.report_dir / 'study.json').read_text())['aggregate'][
        'variants']['pow1']['rows']['mPC']['bootstrap_per_seed']
    md = (study.report_dir / 'study.md').read_text()
    assert 'Missing from the within-run bootstrap only (in every other number):' in md
    assert '- plain_bn seed 0: no per-image records, `run` rebuilds records.npz' in md


@pytest.mark.slow
def test_a_truncated_per_image_file_is_named_and_the_run_listed_missing(
        finished_study, tmp_path, capsys) -> None:
    """records.npz deleted and one sweep/per_image/ file cut short: `run` names the file
    instead of a zipfile traceback, and the report lists the run as missing from the
    within-run bootstrap."""
    study = _copied_study(finished_study, tmp_path)
    (study.run_dir('pow1', 0) / 'records.npz').unlink()
    clean = study.run_dir('pow1', 0) / 'sweep' / 'per_image' / 'clean.npz'
    _truncate(clean)
    assert run_study(study, jobs=1, only=[('pow1', 0)], report=False) == []
    out = capsys.readouterr().out
    assert f'pow1 seed 0: no records.npz, and it cannot be rebuilt ({clean} is not a ' \
           'per-image record file of the sweep (BadZipFile' in out
    report = report_study(study)
    assert [m.split(':')[0] for m in report['missing_records']] == ['pow1 seed 0']


def _truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[:len(path.read_bytes()) // 2])


def _object_array_npz(path: Path) -> None:
    np.savez(path.with_suffix(''), image_ids=np.array([{'a': 1}], dtype=object),
             task=np.asarray('classification'), eval_mode=np.asarray('11points'))


@pytest.mark.slow
@pytest.mark.parametrize('name, corrupt', [
    ('records.npz', _truncate),
    ('records.npz', lambda p: p.write_bytes(np.random.default_rng(0).bytes(3000))),
    ('records.npz', _object_array_npz),
    ('sweep/results.json', _truncate),
    ('sweep/results.json', lambda p: p.write_text('[]')),
    ('run.json', lambda p: p.write_text('"x"')),
], ids=['records_truncated', 'records_random', 'records_object', 'results_truncated',
        'results_list', 'run_string'])
def test_corrupt_study_files_are_named_errors(finished_study, tmp_path, capsys, name,
                                              corrupt) -> None:
    from helpers import load_script
    study = _copied_study(finished_study, tmp_path)
    path = study.run_dir('pow1', 0) / name
    corrupt(path)
    with pytest.raises(StudyError, match=str(path)):
        report_study(study)
    tool = load_script('tools/robustness_study.py')
    with pytest.raises(SystemExit) as exit_info:
        tool.main(['report', study.config_file, '--work-dir', study.work_dir])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith('error: ') and str(path) in err and 'Traceback' not in err


@pytest.mark.slow
def test_a_corrupt_done_json_is_a_named_error(finished_study, tmp_path) -> None:
    study = _copied_study(finished_study, tmp_path)
    done = study.run_dir('plain', 0) / 'train' / 'done.json'
    done.write_text('[1]')
    with pytest.raises(StudyError, match=rf'{done} holds a JSON list, not the dict that was written there'):
        run_one(study, 'plain', 0)


def test_plan_prints_commands_that_survive_a_shell(tmp_path) -> None:
    import shlex
    folder = tmp_path / 'my studies'
    folder.mkdir()
    cfg = _write_study(folder / 'toy study.py')
    study = load_study(str(cfg), str(tmp_path / 'work dir'), check_configs=False)
    commands = plan_study(study, python='/opt/my python/bin/python')
    words = shlex.split(commands[0])
    assert words == ['/opt/my python/bin/python', 'tools/robustness_study.py', 'run', str(cfg),
                     '--work-dir', str(tmp_path / 'work dir'), '--only', 'plain:0']


@pytest.mark.parametrize('threads', [-1, 0])
def test_run_refuses_bad_threads_before_any_work(tmp_path, capsys, threads) -> None:
    from helpers import load_script
    cfg = _write_study(tmp_path / 'toy.py')
    work = tmp_path / 'work'
    with pytest.raises(SystemExit) as exit_info:
        load_script('tools/robustness_study.py').main(
            ['run', str(cfg), '--work-dir', str(work), '--threads', str(threads)])
    assert exit_info.value.code == 2
    assert f'error: --threads must be >= 1 (default: cores / jobs), got {threads}' in \
        capsys.readouterr().err
    assert not work.exists()


def test_run_checks_the_reports_folder_before_training(tmp_path) -> None:
    cfg = _write_study(tmp_path / 'toy.py')
    study = load_study(str(cfg), str(tmp_path / 'work'), check_configs=False)
    (Path(study.work_dir) / 'reports').mkdir(parents=True)
    study.report_dir.write_text('a file where the report folder goes')
    with pytest.raises(NotADirectoryError, match=rf'the report folder {study.report_dir} is a file'):
        run_study(study, only=[('plain', 0)])
    assert not (Path(study.work_dir) / 'runs').exists() and not study.data_root.exists()


def _folder_study(tmp_path: Path, root: Path, num_test: int):
    """A one-run classification study on a generated VOC-layout folder at ``root``."""
    from fq_det.datasets.synthetic_voc import make_synthetic_voc
    make_synthetic_voc(root, num_train=3, num_test=num_test, seed=0, image_size=(64, 48))
    return load_study(dict(task='classification', data=dict(type='folder', root=str(root)),
                           variants=dict(plain=dict(config='configs/classification/synthvoc/'
                                                    'resnet18_synthvoc-crops.py')),
                           reference='plain', seeds=[0]), str(tmp_path / 'w'),
                      check_configs=False)


def test_study_folder_data_key_follows_the_content(tmp_path):
    from fq_det.studies.run_folder import _data_key
    root = tmp_path / 'data'
    study = _folder_study(tmp_path, root, num_test=3)
    key = _data_key(study)
    assert set(key['content_sha256']) == {'trainval', 'test'}
    xml = next((root / 'VOC2007/Annotations').iterdir())
    xml.write_text(xml.read_text().replace('</annotation>', '<!-- edited --></annotation>'))
    assert _data_key(study)['content_sha256'] != key['content_sha256']


def test_a_run_on_data_regenerated_in_place_is_stale_and_the_report_says_why(tmp_path) -> None:
    """A folder study's finished run, then the data set made again in place under the same
    ids (byte-identical split files): the run counts as made with other settings ('train
    data'), and a report with nothing else finished names that instead of only a count."""
    import shutil

    from fq_det.datasets.synthetic_voc import make_synthetic_voc
    from fq_det.studies.run_folder import train_key
    data = tmp_path / 'data'
    study = _folder_study(tmp_path, data, num_test=2)
    run_dir = study.run_dir('plain', 0)
    (run_dir / 'sweep').mkdir(parents=True)
    (run_dir / 'run.json').write_text(json.dumps(dict(
        variant='plain', trained_as='plain', bn_adapt=None,
        train_key=train_key(study, study.variants['plain'], 0, None))))
    (run_dir / 'sweep' / 'results.json').write_text('{"metric_key": "accuracy/top1"}')
    assert changed_settings(study, 'plain', 0) == []
    split = (data / 'VOC2007/ImageSets/Main/test.txt').read_bytes()
    shutil.rmtree(data)
    make_synthetic_voc(data, num_train=3, num_test=2, seed=5, image_size=(64, 48))
    assert (data / 'VOC2007/ImageSets/Main/test.txt').read_bytes() == split
    assert changed_settings(study, 'plain', 0) == ['train data']
    with pytest.raises(FileNotFoundError, match=r'nothing to report \(1 runs missing: plain seed '
                                                r'0: made with other settings \(changed: train '
                                                r'data\)'):
        report_study(study)


def test_cfg_options_override_the_study_and_reach_the_plan(tmp_path, capsys) -> None:
    """``--cfg-options`` (``load_study(options=...)``) overrides values of the study dict; the
    study keeps them, so ``plan`` passes them on and the workers re-read the same study; a
    misspelt key is refused like one in the file."""
    from helpers import load_script
    cfg = _write_study(tmp_path / 'toy.py')
    options = {'seeds': [0, 7], 'data.num_train': 9}
    study = load_study(str(cfg), str(tmp_path / 'w'), check_configs=False, options=options)
    assert study.seeds == (0, 7) and study.data['num_train'] == 9 and study.options == options
    lines = plan_study(study)
    assert len(lines) == 6 and all("--cfg-options 'seeds=[0,7]' data.num_train=9 --only" in line
                                   for line in lines)
    assert load_script('tools/robustness_study.py').main(
        ['plan', str(cfg), '--work-dir', str(tmp_path / 'w'), '--cfg-options', 'seeds=[0,7]',
         'data.num_train=9']) == 0
    import sys
    assert capsys.readouterr().out.splitlines() == plan_study(study, python=sys.executable)
    with pytest.raises(StudyError, match=r"data: unknown key\(s\) 'num_trian'; valid keys"):
        load_study(str(cfg), check_configs=False, options={'data.num_trian': 3})
