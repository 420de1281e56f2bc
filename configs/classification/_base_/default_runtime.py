# Runtime shared by every classification config: mmpretrain's own (default_scope 'mmpretrain',
# its registries, hooks and visualizer), plus fq_det's registrations, a best-top-1 checkpoint
# and logging every 50 iterations.
_base_ = 'mmpretrain::_base_/default_runtime.py'
custom_imports = dict(imports=['fq_det'], allow_failed_imports=False)

default_hooks = dict(
    logger=dict(interval=50),
    checkpoint=dict(interval=1, max_keep_ckpts=3, save_best='accuracy/top1', rule='greater'))
log_processor = dict(window_size=50, by_epoch=True)
