# Why HPOW with the direct reading does not train on the crops (crops_pow_readings.py: clean
# top-1 at chance, the loss flat from the first logged iteration, 72 % of the predicted p
# below 0.5). Hypothesis, fixed before these runs: the L1 penalty's gradient has one sign on
# every weight of the exponent branch, AdamW moves each weight by about lr per step whatever
# the gradient's size, and the hidden activations are non-negative, so the predicted p falls
# by about lr * hidden size * mean activation per step and reaches the clamp (p = 0.01, where
# the clamp stops the task gradient) within tens of iterations. If so, the run without the
# penalty trains, and so does the branch at 1 / 100 of the learning rate with the penalty.
# Shares the run folder (plain and hpow1_direct are the committed runs of seeds 0-2).
#   python tools/robustness_study.py run configs/studies/crops_hpow_direct_diagnosis.py --jobs 2
_base_ = ['./crops_pow_readings.py']
_plain = 'configs/classification/synthvoc/resnet18_synthvoc-crops.py'
_hpow = {'model.backbone.type': 'mmdet.ResNetHPOW',
         'model.backbone.stage_with_quant': (False, True, True, True),
         'custom_hooks': [dict(type='mmdet.AlphaRegularizationHook')]}
_branch_lr = {'optim_wrapper.paramwise_cfg': dict(
    custom_keys={'.reduce_': dict(lr_mult=0.01), '.expand_': dict(lr_mult=0.01)})}
study = dict(
    variants=dict(
        _delete_=True,
        plain={{_base_.study.variants.plain}},
        hpow1_direct={{_base_.study.variants.hpow1_direct}},
        hpow1_direct_noreg=dict(
            config=_plain,
            cfg_options=dict(_hpow, **{'model.backbone.quant_cfg': dict(
                num_splits=1, reduction=4, exponent='direct')}),
            label='+HPOW-1 direct from the mean, no penalty'),
        hpow1_direct_branch_lr=dict(
            config=_plain,
            cfg_options=dict(_hpow, **_branch_lr, **{'model.backbone.quant_cfg': dict(
                num_splits=1, reduction=4, exponent='direct',
                alpha_reg=dict(type='L1', weight=1e-4))}),
            label='+HPOW-1 direct from the mean, branch lr x 0.01'),
    ),
    seeds=[0, 1, 2],
)
