# Which defense? Object-crop classification (ResNet-18 at 1/4 width) plain and POW-1, as
# trained, with test-time BN adaptation (N = 0, 64 test crops per condition), and trained
# with the noise family of distortions (salt-and-pepper, NGRN, Gaussian noise: "seen"; the
# other four unseen). Shares its runs with crops_quantizers.py.
#   python tools/robustness_study.py run configs/studies/crops_defenses.py --jobs 2
_crops = 'configs/classification/synthvoc/'
_bn = dict(prior_strength=0, num_images=64)
_hooks = [dict(type='mmdet.AlphaRegularizationHook')]
_l1 = dict(type='L1', weight=1e-4)
_stages = (False, True, True, True)
study = dict(
    runs='crops_synthvoc',
    task='classification',
    data=dict(type='synthvoc', num_train=2000, num_test=1000, image_size=(160, 120), seed=0),
    variants=dict(
        plain=dict(config=_crops + 'resnet18_synthvoc-crops.py', label='ResNet-18'),
        pow1=dict(config=_crops + 'resnet18_synthvoc-crops.py', label='+POW-1',
                  cfg_options={'model.backbone.type': 'mmdet.ResNetPOW',
                               'model.backbone.quant_cfg': dict(num_splits=1, alpha_reg=_l1),
                               'model.backbone.stage_with_quant': _stages,
                               'custom_hooks': _hooks}),
        sf10=dict(config=_crops + 'resnet18_synthvoc-crops.py', label='+SF-10',
                  cfg_options={'model.backbone.type': 'mmdet.ResNetSF',
                               'model.backbone.quant_cfg': dict(resolution=10),
                               'model.backbone.stage_with_quant': _stages,
                               'custom_hooks': _hooks}),
        plain_bn=dict(train_as='plain', bn_adapt=_bn, label='ResNet-18 + BN adapt.'),
        pow1_bn=dict(train_as='pow1', bn_adapt=_bn, label='+POW-1 + BN adapt.'),
        sf10_bn=dict(train_as='sf10', bn_adapt=_bn, label='+SF-10 + BN adapt.'),
        plain_aug=dict(config=_crops + 'resnet18_synthvoc-crops_aug-noise.py',
                       label='ResNet-18, noise-trained'),
        pow1_aug=dict(config=_crops + 'resnet18-pow1-l1_synthvoc-crops_aug-noise.py',
                      label='+POW-1, noise-trained'),
    ),
    reference='plain',
    seeds=[0, 1, 2, 3, 4],
    distortions='all',
    severities=[1, 3, 5],
    seen_distortions=['salt_pepper', 'ngrn', 'gaussian_noise'],
    train=dict(epochs=6),
    bootstrap=dict(replicates=1000, confidence=0.95),
)
