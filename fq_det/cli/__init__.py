"""What the command-line tools share: set-up from arguments, checks of inputs and outputs,
and one way to report bad input (``error: <message>``, exit status 2).

``errors`` and ``paths`` use only the standard library; ``checkpoints`` and ``cli`` import
torch and mmengine.
"""
from .checkpoints import check_checkpoint_matches, describe_differences, load_checkpoint_file
from .tool_setup import (add_bn_adapt_args, add_config_args, add_launcher_args, apply_bn_adapt_args,
                  build_runner, config_from_args, default_work_dir, enable_amp,
                  end_process_group, load_config, set_resume, set_seed, set_work_dir,
                  setup_launcher)
from .errors import ToolExit, is_user_error, report_user_errors
from .paths import check_not_same_file, check_output_dir, check_output_file

__all__ = ['add_bn_adapt_args', 'apply_bn_adapt_args', 'add_config_args', 'add_launcher_args', 'build_runner', 'check_checkpoint_matches',
           'check_not_same_file', 'check_output_dir', 'check_output_file', 'config_from_args',
           'default_work_dir', 'describe_differences', 'enable_amp', 'end_process_group',
           'is_user_error', 'load_checkpoint_file',
           'load_config', 'report_user_errors', 'set_resume', 'set_seed', 'set_work_dir',
           'setup_launcher', 'ToolExit']
