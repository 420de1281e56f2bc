"""Table 3 formatting of the classification sweep: what the evaluator measured, nothing else."""
from __future__ import annotations

import fq_det  # noqa: F401
from fq_det.classification.tables import format_classification_table, table3_row


def _results(keys: tuple[str, ...], model: str) -> dict:
    def m(v: float) -> dict:
        return {k: v + (10 if k.endswith('top5') else 0) for k in keys}
    return dict(model=model, metric_key='accuracy/top1', seeds=[0], clean=m(80.0),
                distorted={'jpeg': {'1': m(70.0), '5': m(50.0)},
                           'targeted_occlusion': {'1': m(60.0)}},
                summary=dict(P=80.0, mPC=60.0, rPC=0.75))


def test_top1_only_results_give_a_top1_table():
    res = _results(('accuracy/top1', ), 'crops')
    assert table3_row(res) == {'Clean': (80.0, 0.0), 'Jpeg Comp.': (60.0, 0.0),
                               'Tar. Occ.ᵃ': (60.0, 0.0)}
    table = format_classification_table(res)
    assert table.startswith('Classification accuracy (top-1 %: the evaluator measured no top-5')
    assert '| crops | 80.0 | 60.0 | 60.0 |' in table
    assert 'Clean: top-1 80.00. P 80.000' in table and '| jpeg | 70.0 | 50.0 |' in table


def test_top5_results_and_a_mixed_table():
    both = _results(('accuracy/top1', 'accuracy/top5'), 'full')
    assert table3_row(both)['Clean'] == (90.0, 0.0)  # top-5
    assert table3_row(both)['Tar. Occ.ᵃ'] == (60.0, 0.0)  # targeted occlusion: top-1
    table = format_classification_table(both)
    assert table.startswith('Classification accuracy (top-5 %') and '| jpeg | 70.0 / 80.0 |' in table
    mixed = format_classification_table([both, _results(('accuracy/top1', ), 'crops')])
    assert 'top-1 % for the models marked ᵇ' in mixed and '| cropsᵇ | 80.0 |' in mixed


def test_classification_tool_names_bad_distortions_and_severities(repo_root, tmp_path, capsys,
                                                                  monkeypatch):
    import runpy

    import pytest
    cfg = repo_root / 'configs/classification/synthetic/resnet18-pow1-l2_synthcls.py'
    tool = str(repo_root / 'tools/classification/test_robustness.py')
    for flags, expected in ((['--distortions', 'fogg'], 'valid choices: motion_blur, jpeg'),
                            (['--severities', '0'], 'valid choices: 1, 2, 3, 4, 5')):
        monkeypatch.setattr('sys.argv', ['test_robustness.py', str(cfg), str(tmp_path / 'x.pth'),
                                         '--out-dir', str(tmp_path / 'rob'), *flags])
        with pytest.raises(SystemExit) as exit_info:
            runpy.run_path(tool, run_name='__main__')
        assert exit_info.value.code == 2 and expected in capsys.readouterr().err
