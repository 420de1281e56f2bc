"""Robustness studies: several variants x several seeds, trained, swept and compared.

A study config (a Python config file with one ``study`` dict, see ``configs/studies/``)
names the task, the data, the variants (name -> config + ``cfg_options``; for detection an
optional backbone ``pretrain`` classification config), the ``reference`` variant, the
``seeds``, the distortions and severities. Every ``(variant, seed)`` run goes through
resumable stages in ``<work_dir>/runs/<variant>/seed_<seed>/`` (:mod:`.run_folder`):
pretraining, training, the robustness sweep, then ``run.json``. A stage or finished run made
with other settings is refused, and left out of the report, so no result is reused for
another setting. ``seed`` sets the training randomness and the distortion draws; the data
set is the same for every run.

Modules, each importing only those before it: :mod:`.errors`, :mod:`.dispatch` (the routes
that run jobs: a process pool, submitit), :mod:`.config` (the study config and its checks),
:mod:`.run_folder` (the folder layout, stage bookkeeping, keys), :mod:`.progress` (the live
progress line), :mod:`.records` (per-image records for the bootstrap), :mod:`.stages`
(pretrain, train, sweep, exponent statistics), :mod:`.running` (one run, all runs, the
plan), :mod:`.report`, :mod:`.export`, :mod:`.figures` (curves and detection grids of one
seed).
"""
from .config import Study, Variant, check_name, inside_folder, load_study, repo_relative
from .errors import StudyError
from .export import export_results, portable_paths
from .report import report_study
from .run_folder import STAGE, changed_settings, prepare_data
from .running import parse_runs, plan_study, run_one, run_study

__all__ = ['StudyError', 'Study', 'Variant', 'load_study', 'plan_study', 'run_study', 'run_one',
           'changed_settings', 'repo_relative', 'report_study', 'export_results',
           'portable_paths', 'prepare_data', 'check_name', 'inside_folder', 'parse_runs', 'STAGE']
