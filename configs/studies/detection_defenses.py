# Which defense? The main job's small Faster R-CNN, plain and POW-1, each as trained, with
# test-time BN adaptation (Schneider et al. 2020: N = 0, 32 test images per condition), and
# trained with the noise family of distortions (salt-and-pepper, NGRN, Gaussian noise: the
# "seen" distortions; the other four are unseen). Shares its runs with
# detection_quantizers.py (same data, seeds, schedule): rows present in both are computed once.
#   python tools/robustness_study.py run configs/studies/detection_defenses.py --jobs 2
_det = 'configs/synthvoc/'
_crops = 'configs/classification/synthvoc/'
_bn = dict(prior_strength=0, num_images=32)
_hooks = [dict(type='mmdet.AlphaRegularizationHook')]
_sf10 = {'model.backbone.type': 'mmdet.ResNetSF', 'model.backbone.quant_cfg': dict(resolution=10),
         'model.backbone.stage_with_quant': (False, True, True, True), 'custom_hooks': _hooks}
study = dict(
    runs='detection_synthvoc',
    task='detection',
    data=dict(type='synthvoc', num_train=2000, num_test=300, image_size=(160, 120), seed=0),
    variants=dict(
        plain=dict(config=_det + 'faster_rcnn_r18_synthvoc.py',
                   pretrain=_crops + 'resnet18_synthvoc-crops.py', label='ResNet-18'),
        pow1=dict(config=_det + 'faster_rcnn_r18_pow_synthvoc.py',
                  pretrain=_crops + 'resnet18-pow1-l1_synthvoc-crops.py', label='+POW-1'),
        sf10=dict(config=_det + 'faster_rcnn_r18_synthvoc.py', cfg_options=_sf10,
                  pretrain=_crops + 'resnet18_synthvoc-crops.py', pretrain_cfg_options=_sf10,
                  label='+SF-10'),
        plain_bn=dict(train_as='plain', bn_adapt=_bn, label='ResNet-18 + BN adapt.'),
        pow1_bn=dict(train_as='pow1', bn_adapt=_bn, label='+POW-1 + BN adapt.'),
        sf10_bn=dict(train_as='sf10', bn_adapt=_bn, label='+SF-10 + BN adapt.'),
        plain_aug=dict(config=_det + 'faster_rcnn_r18_synthvoc_aug-noise.py',
                       pretrain=_crops + 'resnet18_synthvoc-crops.py',
                       label='ResNet-18, noise-trained'),
        pow1_aug=dict(config=_det + 'faster_rcnn_r18_pow_synthvoc_aug-noise.py',
                      pretrain=_crops + 'resnet18-pow1-l1_synthvoc-crops.py',
                      label='+POW-1, noise-trained'),
    ),
    reference='plain',
    seeds=[0, 1, 2, 3, 4],
    distortions='all',
    severities=[1, 3, 5],
    seen_distortions=['salt_pepper', 'ngrn', 'gaussian_noise'],
    bootstrap=dict(replicates=1000, confidence=0.95),
)
