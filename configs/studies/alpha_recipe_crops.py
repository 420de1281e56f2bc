# Why do the POW exponents stay near 0? An ablation on the crop-classification task:
# ResNet-18+POW-1 (stages 2-4, L1 1e-4, AdamW lr 2e-3 wd 1e-4) against one change at a time.
#   python tools/robustness_study.py run configs/studies/alpha_recipe_crops.py --jobs 2
_pow = 'configs/classification/synthvoc/resnet18-pow1-l1_synthvoc-crops.py'


def _alpha(**kw):
    return {'optim_wrapper.paramwise_cfg': dict(custom_keys={'.alpha': dict(**kw)})}


study = dict(
    task='classification',
    data=dict(type='synthvoc', num_train=2000, num_test=1000, image_size=(160, 120), seed=0),
    variants=dict(
        pow1=dict(config=_pow, label='POW-1 (L1 1e-4)'),
        no_decay=dict(config=_pow, cfg_options=_alpha(decay_mult=0.), label='alpha decay 0'),
        no_l1=dict(config=_pow, cfg_options={'model.backbone.quant_cfg.alpha_reg': None},
                   label='no L1'),
        lr10=dict(config=_pow, cfg_options=_alpha(lr_mult=10.), label='alpha lr x10'),
        recipe=dict(config=_pow, cfg_options=_alpha(lr_mult=10., decay_mult=0.),
                    label='alpha lr x10, decay 0'),
        recipe_no_l1=dict(config=_pow,
                          cfg_options=dict(_alpha(lr_mult=10., decay_mult=0.),
                                           **{'model.backbone.quant_cfg.alpha_reg': None}),
                          label='alpha lr x10, decay 0, no L1'),
        all_stages=dict(config=_pow,
                        cfg_options=dict(_alpha(lr_mult=10., decay_mult=0.), **{
                            'model.backbone.stage_with_quant': (True, True, True, True)}),
                        label='recipe, POW in all 4 stages'),
    ),
    reference='pow1',
    seeds=[0, 1, 2, 3, 4],
    distortions=['motion_blur', 'jpeg', 'salt_pepper', 'ngrn', 'targeted_occlusion'],
    severities=[3],
    train=dict(epochs=6),
    bootstrap=dict(replicates=1000),
)
