"""Fusion rules on hand-built probability maps, pixel by pixel."""
import numpy as np
import pytest
import torch

from cardamage_mmseg.models.segmentors.fusion import FUSION_RULES, fuse


def binary(p_damage):
    """(M, 2, 1, N) from a list of per-member damage probabilities."""
    p = torch.tensor(p_damage, dtype=torch.float64)[:, None, None, :]
    return torch.cat([1 - p, p], dim=1)


# three members, four pixels
P = binary([[0.9, 0.6, 0.2, 0.4],
            [0.8, 0.3, 0.1, 0.45],
            [0.1, 0.4, 0.7, 0.2]])


def labels(rule, weights=None, probs=P):
    return fuse(probs, rule, weights)[1][0].tolist()


def test_majority_of_three():
    # votes for damage: px0 2/3, px1 1/3, px2 1/3, px3 0/3
    assert labels('vote') == [1, 0, 0, 0]


def test_weighted_vote_study_weights():
    # member 0 alone (0.6) outweighs members 1+2 (0.3+0.1)
    assert labels('weighted_vote', [0.6, 0.3, 0.1]) == [1, 1, 0, 0]
    # member 2 (0.6) alone decides: px0 has members 0+1 = 0.4 for damage
    assert labels('weighted_vote', [0.1, 0.3, 0.6]) == [0, 0, 1, 0]


def test_union_and_intersection():
    assert labels('union') == [1, 1, 1, 0]
    assert labels('intersection') == [0, 0, 0, 0]
    both = binary([[0.9, 0.2], [0.7, 0.6]])
    assert labels('intersection', probs=both) == [1, 0]
    assert labels('union', probs=both) == [1, 1]


def test_mean_weighted_mean_and_max():
    # mean damage prob: .6, .433, .333, .35
    assert labels('mean') == [1, 0, 0, 0]
    # weighted .6/.3/.1: .79, .49, .22, .395
    assert labels('weighted_mean', [0.6, 0.3, 0.1]) == [1, 0, 0, 0]
    # max: damage max .9/.6/.7/.45 vs background max .9/.7/.9/.8
    scores, lab = fuse(P, 'max')
    # px0: tie .9/.9, broken by the mean damage probability .6 -> damage
    assert lab[0].tolist() == [1, 0, 0, 0]
    assert torch.allclose(scores.sum(0), torch.ones(1, 4, dtype=scores.dtype))


def test_max_tie_broken_by_mean():
    tie = binary([[0.9], [0.1]])  # max damage .9 == max background .9
    assert labels('max', probs=tie) == [0]  # mean damage .5 -> tie -> 0
    tie = binary([[0.9], [0.2]])
    assert labels('max', probs=tie) == [1]  # .9 vs .8


def test_vote_tie_broken_by_mean_probability():
    two = binary([[0.9, 0.6], [0.2, 0.3]])  # 1 vote each
    assert labels('vote', probs=two) == [1, 0]  # means .55 / .45


def test_multiclass_union_picks_most_voted_foreground():
    # 3 classes, 3 members, 1 pixel: labels 0, 2, 2 -> union gives 2
    p = torch.tensor([[0.8, 0.1, 0.1], [0.1, 0.2, 0.7], [0.2, 0.1, 0.7]],
                     dtype=torch.float64)[:, :, None, None]
    assert fuse(p, 'union')[1].item() == 2
    assert fuse(p, 'intersection')[1].item() == 0
    # labels 1, 2, 0: one vote each for 1 and 2 -> tie -> mean prob decides
    p = torch.tensor([[0.1, 0.6, 0.3], [0.1, 0.4, 0.5], [0.8, 0.1, 0.1]],
                     dtype=torch.float64)[:, :, None, None]
    assert fuse(p, 'union')[1].item() == 1  # mean: c1 .367 > c2 .3


@pytest.mark.parametrize('rule', FUSION_RULES)
def test_one_member_and_identical_members_reproduce_it(rule):
    torch.manual_seed(0)
    one = torch.softmax(torch.randn(1, 4, 8, 8), dim=1)
    expected = one[0].argmax(0)
    assert torch.equal(fuse(one, rule, [1.0])[1], expected)
    three = one.expand(3, -1, -1, -1)
    assert torch.equal(fuse(three, rule, [0.6, 0.3, 0.1])[1], expected)


def test_bad_rule_and_weights():
    with pytest.raises(ValueError, match='unknown fusion rule'):
        fuse(P, 'median')
    with pytest.raises(ValueError, match='2 weights for 3 members'):
        fuse(P, 'weighted_mean', [0.5, 0.5])


def test_term_fusion_reads_terms_member_by_member():
    """(M * T) terms: member 0's T flip terms first, then member 1's; the
    numpy fusion (torch-free: the exported runtime and writer processes)
    gives the tensor face's labels."""
    from cardamage_mmseg.core.fusion import TermFusion
    rng = np.random.default_rng(0)
    log_p = np.log(rng.dirichlet(np.ones(3), size=(2, 2, 5, 7))
                   ).transpose(0, 1, 4, 2, 3).astype(np.float32)
    terms = log_p.reshape(4, 3, 5, 7)  # m0t0, m0t1, m1t0, m1t1
    scores, labels = TermFusion(2, 'weighted_vote', (0.7, 0.3))(terms)
    member_probs = torch.from_numpy(np.exp(log_p).mean(axis=1))
    ref_scores, ref_labels = fuse(member_probs, 'weighted_vote', [0.7, 0.3])
    assert labels.dtype == np.uint8
    assert np.array_equal(labels, ref_labels.numpy())
    assert np.allclose(scores, ref_scores.numpy(), atol=1e-6)
    # member 0 (weight 0.7) decides every pixel
    assert np.array_equal(labels, member_probs[0].argmax(0).numpy())
