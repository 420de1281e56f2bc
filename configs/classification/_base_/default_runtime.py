# Runtime shared by every classification config: mmdet's runtime (default_scope 'mmdet', so one
# registry serves detection and classification) without the detection visualisation hook.
_base_ = 'mmdet::_base_/default_runtime.py'

custom_imports = dict(imports=['fq_det'], allow_failed_imports=False)

default_hooks = dict(
    logger=dict(type='LoggerHook', interval=50),
    checkpoint=dict(type='CheckpointHook', interval=1, max_keep_ckpts=3,
                    save_best='accuracy/top1', rule='greater'),
    visualization=None)
visualizer = dict(type='Visualizer', vis_backends=[dict(type='LocalVisBackend')], name='visualizer')
log_processor = dict(type='LogProcessor', window_size=50, by_epoch=True)
