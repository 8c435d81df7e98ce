"""Losses against hand computations and independent references, gradients,
ignore_index and the all-background edge case."""
import math

import pytest
import torch
import torch.nn.functional as F
from mmengine.registry import init_default_scope

import cardamage_mmseg.register  # noqa: F401
from cardamage_mmseg.models.losses import (LovaszSoftmaxLoss,
                                           MaskedDiceLoss, SoftIoULoss,
                                           SoftmaxFocalLoss)
from mmseg.registry import MODELS

init_default_scope('mmseg')
torch.manual_seed(0)

LOSSES = [
    SoftmaxFocalLoss(gamma=2.0),
    SoftmaxFocalLoss(gamma=1.5, alpha=[0.25, 0.75]),
    SoftmaxFocalLoss(gamma=2.0, use_sigmoid=True, alpha=0.25),
    MaskedDiceLoss(),
    MaskedDiceLoss(exclude_background=True, squared_denominator=True,
                   class_weight=[1.0, 3.0]),
    SoftIoULoss(),
    SoftIoULoss(exclude_background=True),
    LovaszSoftmaxLoss(),
]
IDS = ['focal', 'focal_alpha', 'focal_sigmoid', 'dice', 'dice_sq_fg',
       'iou', 'iou_fg', 'lovasz']


def test_focal_gamma0_equals_cross_entropy():
    logits = torch.randn(2, 3, 5, 5)
    target = torch.randint(0, 3, (2, 5, 5))
    target[0, 0, :3] = 255
    ours = SoftmaxFocalLoss(gamma=0.0)(logits, target)
    ref = F.cross_entropy(logits, target, ignore_index=255)
    assert torch.allclose(ours, ref, atol=1e-6)


@pytest.mark.parametrize('use_sigmoid', [False, True])
@pytest.mark.parametrize('gamma', [0.25, 0.5, 1.0, 2.0])
def test_focal_gradients_finite_for_any_gamma(gamma, use_sigmoid):
    """gamma < 1 gave NaN gradients at every ignored pixel (p_t = 1 there:
    its one-hot row is zero) and at saturated logits."""
    loss = SoftmaxFocalLoss(gamma=gamma, use_sigmoid=use_sigmoid)
    x = torch.zeros(1, 3, 1, 2, requires_grad=True)
    loss(x, torch.tensor([[[0, 255]]])).backward()
    assert torch.isfinite(x.grad).all()
    assert x.grad[..., 1].abs().sum() == 0  # the ignored pixel
    sat = torch.tensor([[[[200.0]], [[-200.0]]]], requires_grad=True)
    value = loss(sat, torch.tensor([[[0]]]))
    value.backward()
    assert torch.isfinite(sat.grad).all() and torch.isfinite(value)


def test_focal_by_hand_2x2():
    # two classes, logits give p(damage) = sigmoid(l1 - l0)
    logits = torch.tensor([[[[0., 0.], [0., 0.]],
                            [[0., math.log(3.)], [0., 0.]]]])
    target = torch.tensor([[[1, 1], [0, 255]]])
    # pixels: (p_t=.5), (p_t=.75), (p_t=.5), ignored
    fl = lambda p: -(1 - p)**2 * math.log(p)  # noqa: E731
    expected = (fl(.5) + fl(.75) + fl(.5)) / 3
    got = SoftmaxFocalLoss(gamma=2.0)(logits, target)
    assert got.item() == pytest.approx(expected, rel=1e-6)
    # per-class alpha: damage pixels x0.75, background x0.25
    expected_a = (.75 * fl(.5) + .75 * fl(.75) + .25 * fl(.5)) / 3
    got = SoftmaxFocalLoss(gamma=2.0, alpha=[.25, .75])(logits, target)
    assert got.item() == pytest.approx(expected_a, rel=1e-6)


def test_sigmoid_focal_matches_torchvision():
    from torchvision.ops import sigmoid_focal_loss
    logits = torch.randn(2, 3, 4, 4)
    target = torch.randint(0, 3, (2, 4, 4))
    one_hot = F.one_hot(target, 3).permute(0, 3, 1, 2).float()
    ref = sigmoid_focal_loss(logits, one_hot, alpha=0.25, gamma=2.0,
                             reduction='sum') / target.numel()
    ours = SoftmaxFocalLoss(gamma=2.0, alpha=0.25, use_sigmoid=True)(
        logits, target)
    assert torch.allclose(ours, ref, atol=1e-6)


def test_dice_and_iou_by_hand_2x2():
    # probabilities exactly 0/1-ish are hard; use logits giving p=0.75/0.25
    l = math.log(3.)
    logits = torch.tensor([[[[0., 0.], [l, 0.]], [[l, l], [0., 0.]]]])
    target = torch.tensor([[[1, 1], [0, 255]]])
    # valid pixels: (1: p1=.75), (1: p1=.75), (0: p0=.75)
    p1 = torch.tensor([.75, .75, .25])
    g1 = torch.tensor([1., 1., 0.])
    p0, g0 = 1 - p1, 1 - g1
    dice = lambda p, g: (2 * (p * g).sum() + 1) / (p.sum() + g.sum() + 1)  # noqa
    iou = lambda p, g: ((p * g).sum() + 1) / (p + g - p * g).sum().add(1)  # noqa
    exp_dice = 1 - (dice(p0, g0) + dice(p1, g1)) / 2
    exp_iou = 1 - (iou(p0, g0) + iou(p1, g1)) / 2
    assert MaskedDiceLoss()(logits, target).item() == pytest.approx(
        exp_dice.item(), rel=1e-6)
    assert SoftIoULoss()(logits, target).item() == pytest.approx(
        exp_iou.item(), rel=1e-6)
    assert MaskedDiceLoss(exclude_background=True)(
        logits, target).item() == pytest.approx(1 - dice(p1, g1).item(),
                                                rel=1e-6)


@pytest.mark.parametrize('loss', LOSSES, ids=IDS)
def test_gradcheck_float64(loss):
    logits = torch.randn(1, 2, 3, 3, dtype=torch.float64, requires_grad=True)
    target = torch.randint(0, 2, (1, 3, 3))
    target[0, 0, 0] = 255
    assert torch.autograd.gradcheck(lambda x: loss(x, target), (logits,))


@pytest.mark.parametrize('loss', LOSSES, ids=IDS)
def test_ignored_pixels_change_nothing(loss):
    logits = torch.randn(1, 2, 4, 4, requires_grad=True)
    target = torch.randint(0, 2, (1, 4, 4))
    base = loss(logits, target)
    (g_base, ) = torch.autograd.grad(base, logits)
    # append a column of ignored pixels with arbitrary logits
    extra = torch.randn(1, 2, 4, 3) * 10
    logits2 = torch.cat([logits.detach(), extra], dim=3).requires_grad_()
    target2 = torch.cat([target, torch.full((1, 4, 3), 255)], dim=2)
    value = loss(logits2, target2)
    (g2, ) = torch.autograd.grad(value, logits2)
    assert torch.allclose(value, base, atol=1e-6)
    assert torch.allclose(g2[..., :4], g_base, atol=1e-6)
    assert torch.count_nonzero(g2[..., 4:]) == 0


@pytest.mark.parametrize('loss', LOSSES, ids=IDS)
def test_all_background_is_finite(loss):
    logits = torch.randn(2, 2, 4, 4, requires_grad=True)
    target = torch.zeros(2, 4, 4, dtype=torch.long)
    value = loss(logits, target)
    value.backward()
    assert torch.isfinite(value) and torch.isfinite(logits.grad).all()
    # and an all-ignored batch too
    value = loss(logits, torch.full((2, 4, 4), 255))
    assert torch.isfinite(value)


def test_built_from_config_with_distinct_names():
    names = set()
    for cfg in (dict(type='SoftmaxFocalLoss'), dict(type='MaskedDiceLoss'),
                dict(type='SoftIoULoss'),
                dict(type='LovaszSoftmaxLoss'),
                dict(type='CrossEntropyLoss', loss_name='loss_ce')):
        names.add(MODELS.build(cfg).loss_name)
    assert names == {'loss_focal', 'loss_dice', 'loss_iou', 'loss_lovasz',
                     'loss_ce'}


def test_out_of_range_target_is_a_clear_error():
    with pytest.raises(ValueError, match='outside 0..1'):
        MaskedDiceLoss()(torch.randn(1, 2, 2, 2), torch.full((1, 2, 2), 3))


def test_lovasz_matches_mmseg_on_ordinary_inputs():
    mmseg_lovasz = MODELS.build(dict(
        type='LovaszLoss', loss_type='multi_class', classes='present',
        per_image=False, reduction='none'))
    for seed in range(3):
        torch.manual_seed(seed)
        logits = torch.randn(2, 3, 6, 6)
        target = torch.randint(0, 3, (2, 6, 6))
        target[0, :2] = 255
        ours = LovaszSoftmaxLoss()(logits, target)
        ref = mmseg_lovasz(logits, target)
        assert torch.allclose(ours, ref, atol=1e-6)


def test_weighted_ce_matches_torch_and_survives_ignore_pixels():
    from cardamage_mmseg.models.losses import WeightedCrossEntropyLoss
    logits = torch.randn(2, 2, 4, 4)
    target = torch.randint(0, 2, (2, 4, 4))
    target[0, 0] = 255
    ours = WeightedCrossEntropyLoss(class_weight=[1.0, 3.0])(logits, target)
    ref = F.cross_entropy(logits, target, weight=torch.tensor([1.0, 3.0]),
                          ignore_index=255)
    assert torch.allclose(ours, ref, atol=1e-6)
    mmseg_ce = MODELS.build(dict(type='CrossEntropyLoss',
                                 class_weight=[1.0, 3.0],
                                 avg_non_ignore=True))
    with pytest.raises(IndexError):  # the mmseg 1.2.2 bug this avoids
        mmseg_ce(logits, target)


@pytest.mark.parametrize('name', ['MaskedDiceLoss', 'SoftIoULoss'])
def test_region_losses_without_smoothing_on_an_all_ignored_batch(name):
    """smooth=0 on a batch whose pixels are all ignored gave NaN (the Dice
    docstring promised no 0/0)."""
    from mmseg.registry import MODELS
    loss = MODELS.build(dict(type=name, smooth=0.0))
    x = torch.randn(2, 3, 4, 4, requires_grad=True)
    value = loss(x, torch.full((2, 4, 4), 255))
    value.backward()
    assert torch.isfinite(value) and value.item() == pytest.approx(0.0)
    assert torch.isfinite(x.grad).all()


@pytest.mark.parametrize('name', ['MaskedDiceLoss', 'SoftIoULoss',
                                  'LovaszSoftmaxLoss'])
def test_region_losses_refuse_per_pixel_weights(name):
    from mmseg.registry import MODELS
    loss = MODELS.build(dict(type=name))
    x, y = torch.randn(1, 2, 4, 4), torch.zeros(1, 4, 4, dtype=torch.long)
    with pytest.raises(ValueError, match='per-pixel weights'):
        loss(x, y, weight=torch.ones(1, 4, 4))


def test_focal_and_ce_normalise_per_pixel_weights_alike():
    """CE divided by the sum of the weights, focal by the pixel count."""
    from mmseg.registry import MODELS
    torch.manual_seed(0)
    x = torch.randn(2, 3, 5, 5)
    y = torch.randint(0, 3, (2, 5, 5))
    y[0, 0] = 255
    r = torch.rand(2, 5, 5) * 3
    ce = MODELS.build(dict(type='WeightedCrossEntropyLoss'))
    focal = MODELS.build(dict(type='SoftmaxFocalLoss', gamma=0.0))
    assert focal(x, y, weight=r).item() == pytest.approx(
        ce(x, y, weight=r).item(), rel=1e-5)
    # a constant weight changes nothing
    assert focal(x, y, weight=torch.full_like(r, 4.0)).item() == \
        pytest.approx(focal(x, y).item(), rel=1e-5)
