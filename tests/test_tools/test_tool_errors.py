"""Bad input to the command-line tools: one ``error:`` line naming the problem, exit status 2,
no traceback, and nothing started (fq_det.cli)."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import torch

from helpers import load_script

REPO_ROOT = Path(__file__).resolve().parents[2]
SYNTH = REPO_ROOT / 'configs' / 'synthvoc'
PLAIN_CFG = SYNTH / 'faster_rcnn_r18_synthvoc.py'
POW_CFG = SYNTH / 'faster_rcnn_r18_pow_synthvoc.py'
CLS_CFG = REPO_ROOT / 'configs' / 'classification' / 'synthetic' / 'resnet18-pow1-l2_synthcls.py'


def _fails(capsys, main, argv: list[str], *needles: str) -> str:
    """Run ``main(argv)``; it must exit with 2 and print one ``error:`` line holding ``needles``."""
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == 2, f'exit status {exit_info.value.code}'
    err = capsys.readouterr().err
    lines = [ln for ln in err.splitlines() if ln.startswith('error: ')]
    assert len(lines) == 1, err
    for needle in needles:
        assert needle in lines[0], f'{needle!r} not in {lines[0]!r}'
    return lines[0]


@pytest.fixture(scope='module')
def synthvoc_checkpoints(tmp_path_factory) -> dict[str, Path]:
    """Untrained plain and POW synthvoc detectors, an empty and a truncated checkpoint."""
    from mmengine.config import Config
    from mmengine.registry import init_default_scope
    from mmengine.runner import save_checkpoint

    import fq_det  # noqa: F401
    from mmdet.registry import MODELS

    root = tmp_path_factory.mktemp('ckpts')
    init_default_scope('mmdet')
    paths = {}
    for name, cfg in (('plain', PLAIN_CFG), ('pow', POW_CFG)):
        model = MODELS.build(Config.fromfile(str(cfg)).model)
        paths[name] = root / f'{name}.pth'
        save_checkpoint({'state_dict': model.state_dict(), 'meta': {}}, str(paths[name]))
    paths['empty'] = root / 'empty.pth'
    paths['empty'].write_bytes(b'')
    paths['truncated'] = root / 'truncated.pth'
    paths['truncated'].write_bytes(paths['pow'].read_bytes()[:5000])
    paths['text'] = root / 'notes.pth'
    paths['text'].write_text('not a checkpoint')
    paths['crafted'] = root / 'crafted.pth'
    torch.save({'state_dict': {}, 'payload': print}, paths['crafted'])  # a callable: never loaded
    return paths


# ------------------------------------------------------------------ the wrapper itself
def test_user_errors_and_bugs_are_told_apart(capsys, monkeypatch):
    from fq_det.cli import ToolExit, is_user_error, report_user_errors

    def raising(err):
        @report_user_errors
        def main():
            raise err
        return main

    for err in (ValueError('--seed must be >= 0'), FileNotFoundError('config file not found: x'),
                KeyError('ResNetFoo is not in the mmdet::model registry')):
        assert is_user_error(err)
        with pytest.raises(ToolExit) as exit_info:
            raising(err)()
        assert exit_info.value.code == 2
        assert capsys.readouterr().err.startswith(f'error: {err.args[0]}')
    # bugs keep their traceback: other types, and a KeyError of a bare key
    for err in (TypeError('unsupported operand'), KeyError('accuracy/top5'), ValueError('')):
        assert not is_user_error(err)
        with pytest.raises(type(err)):
            raising(err)()
    monkeypatch.setenv('FQ_DET_DEBUG', '1')
    with pytest.raises(ValueError):
        raising(ValueError('shown with its traceback'))()


def test_unknown_registered_type_lists_close_matches(tmp_path, capsys):
    """mmengine's "X is not in the registry" gets the registered names closest to X."""
    import fq_det  # noqa: F401  (registers the backbones and quantizers)
    from fq_det.cli import report_user_errors
    from mmdet.registry import MODELS
    from mmengine.registry import init_default_scope

    @report_user_errors
    def main():
        init_default_scope('mmdet')
        MODELS.build(dict(type='ResNetPWO', depth=18))

    with pytest.raises(SystemExit):
        main()
    err = capsys.readouterr().err
    assert "ResNetPWO is not in the mmdet::model registry" in err
    assert "did you mean 'ResNetPOW'" in err


# ------------------------------------------------------------------ missing config file
@pytest.mark.parametrize('tool,extra', [
    ('tools/train.py', []),
    ('tools/test.py', ['x.pth']),
    ('tools/test_robustness.py', ['x.pth']),
    ('tools/classification/train.py', []),
    ('tools/classification/test_robustness.py', ['x.pth']),
])
def test_missing_config_file(tool, extra, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    _fails(capsys, load_script(tool).main, ['no_such_config.py', *extra],
           'config file not found: no_such_config.py')


# ------------------------------------------------------------------ checkpoints
@pytest.mark.parametrize('kind,needle', [
    ('empty', 'is empty (0 bytes)'), ('truncated', 'is not readable (truncated'),
    ('text', 'is not a checkpoint (not a file written by torch.save)'),
    ('crafted', "refused by torch's safe loader (weights_only=True): WeightsUnpickler error")])
def test_unreadable_checkpoint(kind, needle, synthvoc_checkpoints, synthetic_voc_root,
                                       tmp_path, capsys):
    ckpt = str(synthvoc_checkpoints[kind])
    common = ['--data-root', str(synthetic_voc_root), '--work-dir', str(tmp_path / 'w')]
    _fails(capsys, load_script('tools/test.py').main, [str(POW_CFG), ckpt, *common],
           ckpt, needle)
    _fails(capsys, load_script('tools/test_robustness.py').main,
           [str(POW_CFG), ckpt, '--data-root', str(synthetic_voc_root), '--out-dir',
            str(tmp_path / 'rob')], ckpt, needle)
    _fails(capsys, load_script('tools/classification/export_backbone.py').main,
           [ckpt, str(tmp_path / 'backbone.pth')], ckpt, needle)
    _fails(capsys, load_script('tools/classification/test_robustness.py').main,
           [str(CLS_CFG), ckpt, '--out-dir', str(tmp_path / 'cls')], ckpt, needle)
    assert not (tmp_path / 'rob' / 'results.json').exists()
    assert not (tmp_path / 'backbone.pth').exists()


def test_checkpoint_of_another_model_is_refused_unless_allowed(
        synthvoc_checkpoints, synthetic_voc_root, tmp_path, capsys):
    """Plain ResNet weights for a POW config: today's mmengine loads them with strict=False and
    evaluates POW at its initial alpha; the tools refuse and list what differs."""
    plain = str(synthvoc_checkpoints['plain'])
    common = ['--data-root', str(synthetic_voc_root), '--work-dir', str(tmp_path / 'w'),
              '--cfg-options', 'test_dataloader.dataset.indices=2']
    line = _fails(capsys, load_script('tools/test.py').main, [str(POW_CFG), plain, *common],
                  f'checkpoint {plain} does not match the model', 'missing (backbone.',
                  '.alpha', '--allow-partial-load')
    assert 'unexpected' not in line  # POW adds parameters; the plain ones all exist
    _fails(capsys, load_script('tools/test_robustness.py').main,
           [str(POW_CFG), plain, '--data-root', str(synthetic_voc_root), '--out-dir',
            str(tmp_path / 'rob'), '--distortions', 'jpeg', '--severities', '1'],
           'does not match the model', '--allow-partial-load')
    assert not (tmp_path / 'rob' / 'results.json').exists()
    # Allowed: it runs, after one warning line that says what is missing.
    metrics = load_script('tools/test.py').main([str(POW_CFG), plain, *common,
                                                 '--allow-partial-load'])
    assert 'pascal_voc/mAP' in metrics
    err = capsys.readouterr().err
    assert 'warning: --allow-partial-load: checkpoint' in err and '.alpha' in err


def test_resume_from_another_models_checkpoint(synthvoc_checkpoints, synthetic_voc_root,
                                               tmp_path, capsys):
    plain = str(synthvoc_checkpoints['plain'])
    _fails(capsys, load_script('tools/train.py').main,
           [str(POW_CFG), '--data-root', str(synthetic_voc_root), '--work-dir',
            str(tmp_path / 'w'), '--resume', plain],
           f'checkpoint {plain} does not match the model', 'missing')
    assert not (tmp_path / 'w').exists()  # refused before the Runner made its work dir


# ------------------------------------------------------------------ unwritable outputs
def test_unwritable_outputs_are_named_before_any_work(synthvoc_checkpoints, synthetic_voc_root,
                                                      tmp_path, capsys):
    blocker = tmp_path / 'a_file'
    blocker.write_text('not a folder')
    below = str(blocker / 'out')
    pow_ckpt = str(synthvoc_checkpoints['pow'])
    data = ['--data-root', str(synthetic_voc_root)]
    _fails(capsys, load_script('tools/train.py').main, [str(POW_CFG), *data, '--work-dir', below],
           'work dir', below, 'is a file, not a folder')
    _fails(capsys, load_script('tools/test.py').main,
           [str(POW_CFG), pow_ckpt, *data, '--work-dir', str(tmp_path / 'w'), '--out',
            str(blocker / 'preds.pkl')], '--out file', 'is a file, not a folder')
    _fails(capsys, load_script('tools/test_robustness.py').main,
           [str(POW_CFG), pow_ckpt, *data, '--out-dir', below], 'out-dir', below, 'is a file, not a folder')
    _fails(capsys, load_script('tools/classification/train.py').main,
           [str(CLS_CFG), '--work-dir', below], 'work dir', below)
    _fails(capsys, load_script('tools/classification/test_robustness.py').main,
           [str(CLS_CFG), pow_ckpt, '--out-dir', below], 'out-dir', below, 'is a file, not a folder')
    _fails(capsys, load_script('tools/classification/export_backbone.py').main,
           [pow_ckpt, str(blocker / 'b.pth')], 'backbone checkpoint', 'is a file, not a folder')
    _fails(capsys, load_script('tools/misc/make_synthetic_voc.py').main,
           ['--out', below, '--num-train', '1', '--num-test', '1'], '--out folder', below)
    _fails(capsys, load_script('demo/main_job.py').main, ['--out-dir', below],
           '--out-dir folder', below)
    assert blocker.read_text() == 'not a folder'
    assert not (tmp_path / 'w').exists()


def test_read_only_folder_is_refused(tmp_path):
    import os

    from fq_det.cli import check_output_dir
    locked = tmp_path / 'locked'
    locked.mkdir()
    locked.chmod(0o500)
    try:
        if os.access(locked, os.W_OK):
            pytest.skip('running as a user who can write anywhere (root)')
        with pytest.raises(PermissionError, match='is not writable'):
            check_output_dir(locked / 'sub', 'work dir')
    finally:
        locked.chmod(0o700)


# ------------------------------------------------------------------ tool-specific checks
def test_make_synthetic_voc_rejects_a_negative_seed(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        load_script('tools/misc/make_synthetic_voc.py').main(
            ['--out', str(tmp_path / 'd'), '--seed', '-1'])
    assert exit_info.value.code == 2
    assert 'argument --seed: must be >= 0, got -1' in capsys.readouterr().err
    assert not (tmp_path / 'd').exists()


def test_export_backbone_refuses_to_overwrite_its_input(tmp_path, capsys):
    ckpt = tmp_path / 'classifier.pth'
    torch.save({'state_dict': {'backbone.conv1.weight': torch.ones(2)}}, ckpt)
    before = ckpt.read_bytes()
    _fails(capsys, load_script('tools/classification/export_backbone.py').main,
           [str(ckpt), str(ckpt)], 'is the input file', 'refusing to overwrite')
    _fails(capsys, load_script('tools/classification/export_backbone.py').main,
           [str(ckpt), str(tmp_path / '.' / 'classifier.pth')], 'refusing to overwrite')
    assert ckpt.read_bytes() == before


@pytest.mark.slow
def test_real_command_line_prints_one_line_and_exits_2(tmp_path):
    proc = subprocess.run([sys.executable, str(REPO_ROOT / 'tools/test.py'), 'missing.py', 'x.pth'],
                          cwd=tmp_path, capture_output=True, text=True, timeout=180)
    assert proc.returncode == 2
    assert proc.stderr == 'error: config file not found: missing.py\n'  # no warnings either


def test_a_negative_seed_is_refused_by_test_robustness_as_by_train(synthetic_voc_root, tmp_path,
                                                                 capsys):
    data = ['--data-root', str(synthetic_voc_root)]
    _fails(capsys, load_script('tools/train.py').main,
           [str(POW_CFG), *data, '--work-dir', str(tmp_path / 'w'), '--seed', '-1'],
           '--seed must be >= 0, got -1')
    _fails(capsys, load_script('tools/test_robustness.py').main,
           [str(POW_CFG), 'x.pth', *data, '--out-dir', str(tmp_path / 'rob'), '--seed', '-1'],
           '--seed must be >= 0, got -1')
    assert not (tmp_path / 'rob').exists()


# ------------------------------------------------------------------ the analysis tools
def _analysis_calls(ckpt: str, images: str, out: Path) -> list[tuple[str, list[str]]]:
    """Every analysis tool that reads a checkpoint, with ``ckpt`` as that checkpoint."""
    return [
        ('tools/analysis/alpha_histograms.py', [ckpt, '--out-dir', str(out / 'alpha')]),
        ('tools/analysis/feature_moments.py',
         [images, '--config', str(POW_CFG), '--checkpoint', ckpt, '--distortion', 'jpeg',
          '--out-dir', str(out / 'moments')]),
        ('tools/analysis/feature_moments.py',
         [images, '--torchvision', 'resnet18', '--weights', ckpt, '--distortion', 'jpeg',
          '--out-dir', str(out / 'moments')]),
        ('tools/analysis/moment_hypothesis.py',
         ['--images', images, '--detector', '--model', 'pow', str(POW_CFG), ckpt,
          '--distortion', 'jpeg', '--out-dir', str(out / 'hypothesis')]),
    ]


@pytest.mark.parametrize('kind,needle', [
    ('missing', 'checkpoint not found: '), ('truncated', 'is not readable (truncated'),
    ('text', 'is not a checkpoint (not a file written by torch.save)'),
    ('crafted', "refused by torch's safe loader (weights_only=True)")])
def test_analysis_tools_name_an_unreadable_checkpoint(kind, needle, synthvoc_checkpoints,
                                                      synthetic_voc_root, tmp_path, capsys):
    ckpt = str(tmp_path / 'no_such.pth') if kind == 'missing' else str(synthvoc_checkpoints[kind])
    images = str(synthetic_voc_root / 'VOC2007' / 'JPEGImages')
    for tool, argv in _analysis_calls(ckpt, images, tmp_path):
        _fails(capsys, load_script(tool).main, argv, ckpt, needle)
    assert not any(tmp_path.iterdir())  # refused before anything was written


def test_analysis_tools_refuse_another_models_checkpoint(synthvoc_checkpoints,
                                                         synthetic_voc_root, tmp_path, capsys):
    """Plain ResNet weights for the POW config: analysed as given they would leave every
    exponent at its initial value; the tools refuse, as tools/test.py does."""
    plain = str(synthvoc_checkpoints['plain'])
    images = str(synthetic_voc_root / 'VOC2007' / 'JPEGImages')
    for tool, argv in _analysis_calls(plain, images, tmp_path)[1:]:
        if '--weights' in argv:  # a detector checkpoint as torchvision weights
            _fails(capsys, load_script(tool).main, argv, f'{plain} does not hold the weights '
                   'of torchvision resnet18', 'missing')
        else:
            _fails(capsys, load_script(tool).main, argv, f'checkpoint {plain} does not match '
                   'the model', 'missing (backbone.')
    _fails(capsys, load_script('tools/analysis/alpha_histograms.py').main,
           [plain, '--out-dir', str(tmp_path / 'alpha')], f'no POW exponents in {plain}')


def test_analysis_tools_name_missing_inputs_and_unwritable_outputs(synthetic_voc_root, tmp_path,
                                                                   capsys):
    blocker = tmp_path / 'a_file'
    blocker.write_text('not a folder')
    below = str(blocker / 'out')
    _fails(capsys, load_script('tools/analysis/alpha_forces.py').main,
           ['no_such_config.py', '--data-root', str(synthetic_voc_root)],
           'config file not found: no_such_config.py')
    _fails(capsys, load_script('tools/analysis/alpha_forces.py').main,
           [str(CLS_CFG), '--data-root', str(tmp_path / 'nothing'), '--work-dir', str(tmp_path)],
           '--data-root', 'is not a folder')
    _fails(capsys, load_script('tools/analysis/feature_moments.py').main,
           [str(tmp_path / 'no_images'), '--torchvision', 'resnet18', '--distortion', 'jpeg',
            '--out-dir', str(tmp_path / 'm')], 'image folder not found')
    _fails(capsys, load_script('tools/analysis/feature_moments.py').main,
           [str(tmp_path), '--config', 'no_such_config.py', '--distortion', 'jpeg'],
           'config file not found: no_such_config.py')
    _fails(capsys, load_script('tools/analysis/plot_robustness.py').main,
           [str(tmp_path / 'results.json'), '--out', str(tmp_path / 'r.png')],
           'no such results file')
    _fails(capsys, load_script('tools/analysis/plot_pow_curves.py').main,
           ['--out', str(blocker / 'curves.png')], 'is a file, not a folder')
    assert blocker.read_text() == 'not a folder'
