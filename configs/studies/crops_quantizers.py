# Classification study (the supplement's Table 3 is a classification table): object-crop
# classification on the synthetic VOC set, ResNet-18 (1/4 width, the detectors' backbone)
# plain and with each quantizer in stages 2-4, five seeds, every distortion at severities
# 1/3/5 on ~2800 test crops.
#   python tools/robustness_study.py run configs/studies/crops_quantizers.py --jobs 2
_plain = 'configs/classification/synthvoc/resnet18_synthvoc-crops.py'
_stages = (False, True, True, True)
_hooks = [dict(type='mmdet.AlphaRegularizationHook')]


def _quant(backbone, quant_cfg, **extra):
    return dict({'model.backbone.type': backbone, 'model.backbone.quant_cfg': quant_cfg,
                 'model.backbone.stage_with_quant': _stages, 'custom_hooks': _hooks}, **extra)


_l1 = dict(type='L1', weight=1e-4)
study = dict(
    runs='crops_synthvoc',  # run folder shared with the other crops studies
    task='classification',
    data=dict(type='synthvoc', num_train=2000, num_test=1000, image_size=(160, 120), seed=0),
    variants=dict(
        plain=dict(config=_plain, label='ResNet-18'),
        sf10=dict(config=_plain, cfg_options=_quant('mmdet.ResNetSF', dict(resolution=10)),
                  label='+SF-10'),
        sf100=dict(config=_plain, cfg_options=_quant('mmdet.ResNetSF', dict(resolution=100)),
                   label='+SF-100'),
        pow1=dict(config=_plain,
                  cfg_options=_quant('mmdet.ResNetPOW', dict(num_splits=1, alpha_reg=_l1)),
                  label='+POW-1'),
        pow2=dict(config=_plain,
                  cfg_options=_quant('mmdet.ResNetPOW', dict(num_splits=2, alpha_reg=_l1)),
                  label='+POW-2'),
        pow4=dict(config=_plain,
                  cfg_options=_quant('mmdet.ResNetPOW', dict(num_splits=4, alpha_reg=_l1)),
                  label='+POW-4'),
        pow8=dict(config=_plain,
                  cfg_options=_quant('mmdet.ResNetPOW', dict(num_splits=8, alpha_reg=_l1)),
                  label='+POW-8'),
        hpow1=dict(config=_plain,
                   cfg_options=_quant('mmdet.ResNetHPOW',
                                      dict(num_splits=1, reduction=4, alpha_reg=_l1)),
                   label='+HPOW-1'),
        pow1_s1=dict(config=_plain,  # stage 1 too, where the supplement's Fig. 2 quantizes most
                     cfg_options=_quant('mmdet.ResNetPOW', dict(num_splits=1, alpha_reg=_l1),
                                        **{'model.backbone.stage_with_quant': (True, ) * 4}),
                     label='+POW-1, all 4 stages'),
        pow1_alpha=dict(
            config='configs/classification/synthvoc/resnet18-pow1-l1-alpha_synthvoc-crops.py',
            label='+POW-1, alpha recipe'),
    ),
    reference='plain',
    seeds=[0, 1, 2, 3, 4],
    distortions='all',
    severities=[1, 3, 5],
    train=dict(epochs=6),
    bootstrap=dict(replicates=1000, confidence=0.95),
)
