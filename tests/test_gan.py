import copy
import math

import pytest
import torch

from course_lib.models import GAN, InfoGAN, UnrolledGAN, UnrolledInfoGAN, build_model, parse_codes
from course_lib.models.gan import CodeSpec, adam_state_of, adam_step, gan_discriminator_loss, generator_loss
from course_lib.train import train

TINY = dict(arch="mlp", noise_dim=2, hidden=4, layers=1, replicas=1)


# -- code specifications ------------------------------------------------------------------
def test_parse_codes_forms():
    assert parse_codes("cat10,cont2") == CodeSpec((10,), 2)
    assert parse_codes(" cat3 , cat4, cont ") == CodeSpec((3, 4), 1)
    assert parse_codes([{"type": "categorical", "size": 10}, {"type": "continuous", "size": 2}]) == CodeSpec((10,), 2)
    assert parse_codes("") == CodeSpec() and parse_codes(None) == CodeSpec()
    spec = parse_codes("cont3,cat5")
    assert spec.dim == 8 and spec.q_outputs == 11 and str(spec) == "cat5,cont3"
    assert parse_codes(str(spec)) == spec


@pytest.mark.parametrize("bad", ["cat1", "cat", "foo3", "cat10;cont2", "cont0", "cat-3",
                                 [{"type": "gaussian", "size": 2}], [{"size": 2}], [{"type": "cat", "size": 2.5}],
                                 [{"type": "cat", "size": 3, "extra": 1}]])
def test_parse_codes_rejects_bad_specs(bad):
    with pytest.raises(ValueError, match="expected a string such as"):
        parse_codes(bad)


def test_parse_codes_rejects_wrong_type():
    with pytest.raises(TypeError):
        parse_codes(10)


def test_bad_hyper_parameters():
    with pytest.raises(ValueError, match="unroll_steps K must be an integer >= 0"):
        UnrolledGAN(unroll_steps=-1, **TINY)
    with pytest.raises(ValueError, match="unroll_steps"):
        UnrolledInfoGAN(unroll_steps=1.5, codes="cat3", **TINY)
    with pytest.raises(ValueError, match="lam"):
        InfoGAN(codes="cat3", lam=-0.5, **TINY)
    with pytest.raises(ValueError, match="at least one latent code"):
        InfoGAN(codes="", **TINY)
    with pytest.raises(ValueError, match="expected a string such as"):
        InfoGAN(codes="cat10,cont2,style", **TINY)
    with pytest.raises(ValueError, match="arch"):
        GAN(arch="resnet")


@pytest.mark.parametrize("cls,kw", [(GAN, {}), (UnrolledGAN, dict(unroll_steps=3, first_order=True)),
                                    (InfoGAN, dict(codes="cat3,cont2", lam=0.5)),
                                    (UnrolledInfoGAN, dict(unroll_steps=2, codes="cat3,cont1"))])
def test_config_rebuilds_the_model(cls, kw):
    m = cls(**kw, **TINY)
    again = build_model(m.model_name, **m.config())
    assert type(again) is cls and again.config() == m.config()
    assert sum(p.numel() for p in again.parameters()) == sum(p.numel() for p in m.parameters())


# -- the functional Adam -------------------------------------------------------------------
def test_adam_step_matches_torch_optim_adam():
    torch.manual_seed(0)
    w = torch.randn(3, 4, requires_grad=True)
    b = torch.randn(4, requires_grad=True)
    opt = torch.optim.Adam([w, b], lr=0.01, betas=(0.5, 0.99), eps=1e-6)
    params = {"w": w.detach().clone(), "b": b.detach().clone()}
    state = {"step": 0, "exp_avg": {k: torch.zeros_like(v) for k, v in params.items()},
             "exp_avg_sq": {k: torch.zeros_like(v) for k, v in params.items()}}
    for _ in range(4):
        x = torch.randn(5, 3)
        opt.zero_grad()
        ((x @ w + b) ** 2).sum().backward()
        grads = {"w": w.grad.clone(), "b": b.grad.clone()}
        opt.step()
        params, state = adam_step(params, state, grads, lr=0.01, betas=(0.5, 0.99), eps=1e-6)
        assert torch.allclose(params["w"], w.detach(), atol=1e-6)
        assert torch.allclose(params["b"], b.detach(), atol=1e-6)
    # adam_state_of reads the same moments back from the optimiser
    read, hyper = adam_state_of(opt, {"w": w, "b": b})
    assert read["step"] == 4 and hyper == {"lr": 0.01, "betas": (0.5, 0.99), "eps": 1e-6}
    assert torch.allclose(read["exp_avg"]["w"], state["exp_avg"]["w"], atol=1e-6)
    assert torch.allclose(read["exp_avg_sq"]["b"], state["exp_avg_sq"]["b"], atol=1e-7)


# -- unrolling ------------------------------------------------------------------------------
def _warm(model, steps=3, seed=0, dtype=torch.float64):
    """A model with non-zero Adam moments in its discriminator optimiser, and a fixed batch."""
    torch.manual_seed(seed)
    model.to(dtype)
    opts = model.configure_optimizers(1e-2)
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(model.replicas * 6, model.data_dim, generator=g, dtype=dtype) + 1.0
    for step in range(steps):
        model.training_step(x, step, opts)
    z = torch.randn(model.replicas, 6, model.noise_dim, generator=g, dtype=dtype)
    return opts, model._split(x), z


def _gen_grad(model, x, z, d_opt, **kw):
    model.generator.zero_grad(set_to_none=True)
    loss = model.unrolled_generator_loss(x, model.generate(z), d_opt, **kw)
    grads = torch.autograd.grad(loss, list(model.generator.parameters()))
    return loss.detach(), torch.cat([g.reshape(-1) for g in grads])


def test_k0_equals_the_plain_gan_generator_gradient():
    plain = GAN(**TINY)
    opts, x, z = _warm(plain)
    unrolled = UnrolledGAN(unroll_steps=0, **TINY).double()
    unrolled.load_state_dict(plain.state_dict())
    fake = plain.generate(z)
    ref = torch.autograd.grad(generator_loss(plain.discriminator(fake)), list(plain.generator.parameters()))
    _, got = _gen_grad(unrolled, x, z, opts["discriminator"])
    assert torch.allclose(got, torch.cat([r.reshape(-1) for r in ref]), atol=1e-12)


def test_k0_trains_exactly_like_the_plain_gan():
    from course_lib.data import RingOfGaussians

    kw = dict(arch="mlp", noise_dim=4, hidden=8, layers=1, replicas=2)
    torch.manual_seed(0)
    a = train(GAN(**kw), RingOfGaussians(), steps=5, batch_size=16, lr=1e-3, seed=3, device="cpu",
              progress=False)
    torch.manual_seed(0)
    b = train(UnrolledGAN(unroll_steps=0, **kw), RingOfGaussians(), steps=5, batch_size=16, lr=1e-3, seed=3,
              device="cpu", progress=False)
    assert not torch.equal(a.model.generator[0].weight, GAN(**kw).generator[0].weight)
    for (na, pa), (nb, pb) in zip(a.model.named_parameters(), b.model.named_parameters()):
        assert na == nb and torch.equal(pa, pb)


@pytest.mark.parametrize("K", [1, 3])
def test_second_order_gradient_matches_finite_differences(K):
    model = UnrolledGAN(unroll_steps=K, first_order=False, **TINY)
    opts, x, z = _warm(model)
    d_opt = opts["discriminator"]
    d_before = copy.deepcopy(model.discriminator.state_dict())
    _, grad = _gen_grad(model, x, z, d_opt)
    # the unroll must not touch the real discriminator
    for k, v in model.discriminator.state_dict().items():
        assert torch.equal(v, d_before[k])
    params = list(model.generator.parameters())
    flat = torch.cat([p.detach().reshape(-1) for p in params])

    def f_K(vec):
        with torch.no_grad():
            i = 0
            for p in params:
                p.copy_(vec[i:i + p.numel()].view_as(p))
                i += p.numel()
        with torch.enable_grad():
            return float(model.unrolled_generator_loss(x, model.generate(z), d_opt).detach())

    eps = 1e-6
    fd = torch.empty_like(flat)
    for i in range(len(flat)):
        e = torch.zeros_like(flat)
        e[i] = eps
        fd[i] = (f_K(flat + e) - f_K(flat - e)) / (2 * eps)
    f_K(flat)
    assert grad.abs().max() > 1e-4
    assert torch.allclose(grad, fd, rtol=1e-5, atol=1e-8), (grad - fd).abs().max()


def test_first_order_differs_from_second_order_and_matches_a_real_unroll():
    model = UnrolledGAN(unroll_steps=3, **TINY)
    opts, x, z = _warm(model)
    d_opt = opts["discriminator"]
    _, second = _gen_grad(model, x, z, d_opt, first_order=False)
    _, first = _gen_grad(model, x, z, d_opt, first_order=True)
    assert (second - first).norm() > 1e-3 * second.norm()
    # independent first-order reference: K real Adam steps of a copy of D (with a copy of its
    # optimiser state) on the same batch, then the plain generator gradient against that copy
    d_copy = copy.deepcopy(model.discriminator)
    opt_copy = torch.optim.Adam(d_copy.parameters(), lr=1e-2, betas=model.betas)
    state = adam_state_of(d_opt, dict(model.discriminator.named_parameters()))[0]
    opt_copy.load_state_dict({
        "state": {i: {"step": torch.tensor(float(state["step"]), dtype=torch.float64),
                      "exp_avg": state["exp_avg"][n].clone(), "exp_avg_sq": state["exp_avg_sq"][n].clone()}
                  for i, (n, _) in enumerate(model.discriminator.named_parameters())},
        "param_groups": opt_copy.state_dict()["param_groups"]})
    fake = model.generate(z).detach()
    for _ in range(3):
        opt_copy.zero_grad()
        gan_discriminator_loss(d_copy(x), d_copy(fake)).backward()
        opt_copy.step()
    loss = generator_loss(d_copy(model.generate(z)))
    ref = torch.autograd.grad(loss, list(model.generator.parameters()))
    assert torch.allclose(first, torch.cat([r.reshape(-1) for r in ref]), atol=1e-10)
    # at K = 0 both orders agree
    _, a = _gen_grad(model, x, z, d_opt, steps=0, first_order=False)
    _, b = _gen_grad(model, x, z, d_opt, steps=0, first_order=True)
    assert torch.equal(a, b)


def test_replicas_are_independent():
    model = GAN(arch="mlp", noise_dim=3, hidden=5, layers=1, replicas=3).double()
    x = torch.randn(3, 4, 2, dtype=torch.float64)
    loss = gan_discriminator_loss(model.discriminator(x), model.discriminator(x + 1))
    g1 = torch.autograd.grad(loss, model.discriminator.head.weight)[0]
    x2 = x.clone()
    x2[2] += 5  # change only replica 2's data
    loss2 = gan_discriminator_loss(model.discriminator(x2), model.discriminator(x2 + 1))
    g2 = torch.autograd.grad(loss2, model.discriminator.head.weight)[0]
    assert torch.equal(g1[:2], g2[:2]) and not torch.equal(g1[2], g2[2])


# -- InfoGAN --------------------------------------------------------------------------------
def test_latent_codes_shapes_and_ranges():
    m = InfoGAN(codes="cat10,cat3,cont2", arch="conv32", width=8)
    z, c, cat, cont = m.sample_latent(500, generator=torch.Generator().manual_seed(0))
    assert z.shape == (500, 62) and c.shape == (500, 15) and cat.shape == (500, 2) and cont.shape == (500, 2)
    assert torch.equal(c[:, :10].argmax(1), cat[:, 0]) and torch.equal(c[:, 10:13].argmax(1), cat[:, 1])
    assert torch.all(c[:, :13].sum(1) == 2)
    assert cont.min() >= -1 and cont.max() <= 1 and cont.min() < -0.9 and cont.max() > 0.9
    assert torch.equal(c[:, 13:], cont)
    assert m.sample(4).shape == (4, 1, 32, 32)


def test_default_is_the_mnist_setup():
    m = InfoGAN()
    assert m.code_spec == CodeSpec((10,), 2) and m.noise_dim == 62 and m.arch == "conv32"
    assert InfoGAN(arch="conv64", width=4).sample(2).shape == (2, 1, 64, 64)


def test_info_terms_match_torch_distributions():
    m = InfoGAN(codes="cat4,cat3,cont2", lam=0.7, **TINY)
    torch.manual_seed(1)
    feats = torch.randn(1, 9, 4)
    _, _, cat, cont = m.sample_latent(9)
    logits, mu, log_std = m.q_outputs(features=feats)
    ce = sum(-torch.distributions.Categorical(logits=lg).log_prob(cat[..., i]).mean() for i, lg in enumerate(logits))
    nll = -torch.distributions.Normal(mu, log_std.exp()).log_prob(cont).sum(-1).mean()
    t = m.info_terms(feats, cat, cont)
    assert torch.allclose(t["q_cat"], ce, atol=1e-5)
    assert torch.allclose(t["q_cont"], nll, atol=1e-5)
    assert torch.allclose(t["info"], ce + 0.7 * nll, atol=1e-5)
    assert torch.allclose(t["q_cont_mse"], ((cont - mu) ** 2).mean(), atol=1e-6)


def test_unrolled_infogan_objective_is_eq_13():
    kw = dict(codes="cat3,cont1", lam=0.5, **TINY)
    model = UnrolledInfoGAN(unroll_steps=2, **kw)
    opts, x, z = _warm(model)
    _, _, cat, cont = model.sample_latent(6)
    c = model.code_vector(cat, cont).double()
    cont = cont.double()
    gen = list(model.generator.parameters())
    terms, total = model.generator_objective(x, model.generate(z, c), cat, cont, opts["discriminator"])
    adv = terms["fake"] + terms["real"]
    g_total = torch.autograd.grad(total, gen)
    # adversarial part through the unrolled D, information part through the current D
    g_adv = torch.autograd.grad(model.unrolled_generator_loss(x, model.generate(z, c), opts["discriminator"]), gen)
    info = model.info_terms(model.discriminator.trunk(model.generate(z, c)), cat, cont)["info"]
    g_info = torch.autograd.grad(info, gen)
    for a, b, i in zip(g_total, g_adv, g_info):
        assert torch.allclose(a, b + i, atol=1e-10)
    assert torch.allclose(adv, model.unrolled_generator_loss(x, model.generate(z, c), opts["discriminator"]))


def test_infogan_trains_on_the_one_loop_and_logs_q_losses():
    data = (torch.rand(16, 1, 32, 32) > 0.7).float()
    m = UnrolledInfoGAN(unroll_steps=1, codes="cat3,cont2", arch="conv32", width=4, noise_dim=8)
    res = train(m, data, steps=2, batch_size=4, lr=1e-3, seed=0, device="cpu", progress=False, log_every=1)
    for key in ("loss", "d_loss", "g_loss", "q_cat", "q_cont", "q_cont_mse", "info"):
        assert len(res.history[key]) == 2 and all(math.isfinite(v) for v in res.history[key])


def test_matched_accuracy_equals_brute_force_over_permutations():
    import itertools

    from course_lib.models.gan import matched_accuracy

    g = torch.Generator().manual_seed(0)
    labels = torch.randint(4, (60,), generator=g)
    pred = (labels + 1) % 4
    pred[:15] = torch.randint(4, (15,), generator=g)
    acc, mapping = matched_accuracy(pred, labels)
    brute = max(sum(int(perm[p]) == int(label) for p, label in zip(pred, labels))
                for perm in itertools.permutations(range(4)))
    assert acc == pytest.approx(brute / 60)
    assert mapping[1] == 0 and mapping[2] == 1  # cluster (l + 1) % 4 is label l
    with pytest.raises(ValueError):
        matched_accuracy(torch.zeros(3), torch.zeros(4))


def test_predict_codes_and_traversal_shapes():
    m = InfoGAN(codes="cat4,cont2", arch="conv32", width=4)
    cats, mus = m.predict_codes(torch.rand(5, 1, 32, 32), batch_size=2)
    assert cats.shape == (5, 1) and cats.dtype == torch.long and mus.shape == (5, 2)
    imgs = m.traversal(1, torch.linspace(-1, 1, 3), generator=torch.Generator().manual_seed(0))
    assert imgs.shape == (12, 1, 32, 32)
    assert m.training
    with pytest.raises(ValueError, match="cont_index"):
        m.traversal(2, [0.0])


def test_traversal_holds_the_noise_and_varies_one_code_per_column():
    """The generator's inputs, captured: one noise vector for every image, the categories of the
    chosen categorical code down the rows, the values of the chosen continuous code along the
    columns, the other continuous code at 0; a cat_code that names no code is refused."""
    m = InfoGAN(codes="cat3,cat2,cont2", noise_dim=5, arch="conv32", width=4)
    seen = []
    m.generator.register_forward_pre_hook(lambda module, args: seen.append(args[0].detach().clone()))
    values = torch.tensor([-1.0, 0.0, 1.0])
    m.traversal(1, values, generator=torch.Generator().manual_seed(0), cat_code=0)
    inputs = seen[-1].flatten(0, -2)            # 9 images × (noise 5 + one-hots 3 + 2 + continuous 2)
    noise, cat0, cat1, cont = inputs.split([5, 3, 2, 2], dim=1)
    assert (noise == noise[0]).all()
    assert cat0.argmax(1).tolist() == [0, 0, 0, 1, 1, 1, 2, 2, 2]
    assert (cat1 == cat1[0]).all()               # the other categorical code fixed
    assert cont[:, 1].tolist() == values.repeat(3).tolist() and (cont[:, 0] == 0).all()
    for bad in (-1, 2, True):
        with pytest.raises(ValueError, match="cat_code"):
            m.traversal(0, values, cat_code=bad)
    with pytest.raises(ValueError, match=r"lam \(λ.* must be a number"):
        InfoGAN(codes="cat3,cont2", lam="0.1")
    with pytest.raises(ValueError, match="lam_cat .* must be a number"):
        InfoGAN(codes="cat3,cont2", lam_cat=True)


def test_representation_is_the_most_likely_categories_then_the_means():
    torch.manual_seed(0)
    m = InfoGAN(codes="cat4,cat3,cont2", arch="conv32", width=4).eval()
    x = torch.rand(6, 1, 32, 32)
    rep = m.representation(x, batch_size=4)
    logits, mu, _ = m.q_outputs(x)
    assert rep.shape == (6, 4)
    assert torch.equal(rep[:, 0].long(), logits[0].argmax(-1)) and torch.equal(rep[:, 1].long(), logits[1].argmax(-1))
    assert torch.allclose(rep[:, 2:], mu, atol=1e-6)


def test_bench_unroll_runs_and_rejects_negative_k(capsys):
    from course_lib.cli import bench_gan

    rows = bench_gan.run((0, 1), arch="mlp", batch=8, repeats=1, printer=lambda *_: None)
    assert [(r["K"], r["order"]) for r in rows] == [(0, "-"), (1, "first"), (1, "second")]
    assert all(r["ms"] > 0 for r in rows) and rows[0]["ratio"] == 1.0
    assert bench_gan.main(["--ks", "0", "--repeats", "1", "--batch", "4"]) == 0
    assert "per generator step" in capsys.readouterr().out
    with pytest.raises(SystemExit):  # argparse: one line, exit status 2
        bench_gan.main(["--ks", "-1"])
    assert "argument --ks: expected an integer >= 0, got '-1'" in capsys.readouterr().err


# -- optimiser options of the GANs and the weight of the categorical codes -------------------
def test_d_lr_ratio_and_q_with_set_the_optimisers():
    m = InfoGAN(codes="cat3,cont1", d_lr_ratio=0.25, q_with="generator", **TINY)
    opts = m.configure_optimizers(2e-3)
    assert opts["generator"].param_groups[0]["lr"] == pytest.approx(2e-3)
    assert opts["discriminator"].param_groups[0]["lr"] == pytest.approx(5e-4)
    g_ids = {id(p) for p in opts["generator"].param_groups[0]["params"]}
    d_ids = {id(p) for p in opts["discriminator"].param_groups[0]["params"]}
    q_ids = {id(p) for p in m.q_head.parameters()}
    assert q_ids <= g_ids and not q_ids & d_ids
    assert {id(p) for p in m.discriminator.parameters()} == d_ids
    # the default: Q's head with the discriminator, one learning rate for both
    opts = InfoGAN(codes="cat3", **TINY).configure_optimizers(1e-3)
    assert opts["discriminator"].param_groups[0]["lr"] == opts["generator"].param_groups[0]["lr"] == 1e-3
    again = build_model("infogan", **m.config())
    assert again.d_lr_ratio == 0.25 and again.q_with == "generator"
    assert GAN(d_lr_ratio=0.5, **TINY).configure_optimizers(1.0)["discriminator"].param_groups[0]["lr"] == 0.5


@pytest.mark.parametrize("bad", [0, -1.0, float("nan"), float("inf"), "fast", True])
def test_bad_d_lr_ratio(bad):
    with pytest.raises(ValueError, match="d_lr_ratio"):
        InfoGAN(codes="cat3", d_lr_ratio=bad, **TINY)


def test_bad_q_with_and_lam_cat():
    with pytest.raises(ValueError, match="q_with"):
        InfoGAN(codes="cat3", q_with="both", **TINY)
    with pytest.raises(ValueError, match="lam_cat"):
        UnrolledInfoGAN(codes="cat3", lam_cat=-1, **TINY)


def test_lam_cat_weights_the_cross_entropy():
    m = InfoGAN(codes="cat4,cont2", lam=0.3, lam_cat=2.5, **TINY)
    torch.manual_seed(2)
    feats = torch.randn(1, 8, 4)
    _, _, cat, cont = m.sample_latent(8)
    logits, mu, log_std = m.q_outputs(features=feats)
    ce = -torch.distributions.Categorical(logits=logits[0]).log_prob(cat[..., 0]).mean()
    nll = -torch.distributions.Normal(mu, log_std.exp()).log_prob(cont).sum(-1).mean()
    assert torch.allclose(m.info_terms(feats, cat, cont)["info"], 2.5 * ce + 0.3 * nll, atol=1e-5)


def test_generator_step_trains_g_and_q_with_the_information_loss():
    """With Q's head in the generator's optimiser, one training step moves Q's head by the
    generator's Adam step on the information loss (Adam's first step moves every parameter with
    a non-zero gradient by lr), and the generator's gradient includes the information term."""
    torch.manual_seed(3)
    m = InfoGAN(codes="cat3,cont1", q_with="generator", d_lr_ratio=0.1, **TINY)
    opts = m.configure_optimizers(1e-2)
    q_before = [p.detach().clone() for p in m.q_head.parameters()]
    x = torch.randn(6, 2)
    m.training_step(x, 0, opts)
    moved = [(p.detach() - b).abs() for p, b in zip(m.q_head.parameters(), q_before)]
    assert all(d.max() > 0 for d in moved)
    assert max(float(d.max()) for d in moved) == pytest.approx(1e-2, rel=1e-3)
    # the generator's objective without the information term has a different gradient
    z, c, cat, cont = m.sample_latent(6)
    fake = m.generate(z, c)
    gen = list(m.generator.parameters())
    terms, total = m.generator_objective(m._split(x), fake, cat, cont, opts["discriminator"])
    g_adv = torch.autograd.grad(terms["fake"] + terms["real"], gen, retain_graph=True)
    g_total = torch.autograd.grad(total, gen)
    assert max(float((a - b).abs().max()) for a, b in zip(g_adv, g_total)) > 1e-6


def test_config_lists_new_options_only_when_not_default():
    """Checkpoints saved before d_lr_ratio, lam_cat and q_with existed still match a default model."""
    cfg = InfoGAN(codes="cat3", **TINY).config()
    assert not {"d_lr_ratio", "lam_cat", "q_with"} & set(cfg)
    cfg = InfoGAN(codes="cat3", lam_cat=2.0, q_with="generator", d_lr_ratio=0.5, **TINY).config()
    assert (cfg["lam_cat"], cfg["q_with"], cfg["d_lr_ratio"]) == (2.0, "generator", 0.5)
    assert build_model("infogan", **cfg).config() == cfg


# -- the seed's f_K (eq. 10), computed independently -------------------------------------------
def _seed_f_K(model, x, z, d_opt, K):
    """f(θ_G, θ_D^K) of seed eq. 1 and 10, without the course's functional optimiser: K real
    ``torch.optim.Adam`` steps on a copy of D (and of its optimiser state) against the fixed
    fakes G(z), then E_x log D_K(x) + E_z log(1 − D_K(G(z))), for replica 0's batch."""
    import torch.nn.functional as F

    with torch.no_grad():
        fake = model.generate(z)
    disc = copy.deepcopy(model.discriminator)
    opt = torch.optim.Adam(disc.parameters())
    names = [n for n, _ in model.discriminator.named_parameters()]
    state = copy.deepcopy(d_opt.state_dict())  # load_state_dict would share the moment tensors
    index = {id(p): i for i, p in enumerate(p for g in d_opt.param_groups for p in g["params"])}
    own = [index[id(p)] for p in model.discriminator.parameters()]
    opt.load_state_dict({"state": {j: state["state"][i] for j, i in enumerate(own) if i in state["state"]},
                         "param_groups": [{**state["param_groups"][0], "params": list(range(len(names)))}]})
    for _ in range(K):
        opt.zero_grad()
        loss = F.softplus(-disc(x)).mean(-1).sum() + F.softplus(disc(fake)).mean(-1).sum()
        loss.backward()
        opt.step()
    with torch.no_grad():
        return float(-F.softplus(-disc(x)).mean(-1).sum() - F.softplus(disc(fake)).mean(-1).sum())


def _flat_params(params):
    return torch.cat([p.detach().reshape(-1) for p in params])


def _set_flat(params, vec):
    with torch.no_grad():
        i = 0
        for p in params:
            p.copy_(vec[i:i + p.numel()].view_as(p))
            i += p.numel()


@pytest.mark.parametrize("K", [1, 3])
def test_generator_gradient_is_the_seeds_f_K_by_finite_differences(K):
    """Seed 002 eq. 10-11 in float64: with generator_form="minimax" the generator's gradient is
    the central finite difference of f_K = E_x log D_K(x) + E_z log(1 - D_K(G(z))), where
    D_K comes from K real Adam steps; first order differs; the real term matters."""
    model = UnrolledGAN(unroll_steps=K, generator_form="minimax", **TINY)
    opts, x, z = _warm(model)
    d_opt = opts["discriminator"]
    _, grad = _gen_grad(model, x, z, d_opt)
    params = list(model.generator.parameters())
    flat = _flat_params(params)
    eps = 1e-6
    fd = torch.empty_like(flat)
    for i in range(len(flat)):
        e = torch.zeros_like(flat)
        e[i] = eps
        _set_flat(params, flat + e)
        up = _seed_f_K(model, x, z, d_opt, K)
        _set_flat(params, flat - e)
        fd[i] = (up - _seed_f_K(model, x, z, d_opt, K)) / (2 * eps)
    _set_flat(params, flat)
    assert fd.abs().max() > 1e-4
    assert torch.allclose(grad, fd, rtol=1e-5, atol=1e-9), (grad - fd).abs().max()
    _, first = _gen_grad(model, x, z, d_opt, first_order=True)
    assert (first - fd).norm() > 1e-3 * fd.norm()
    # without the real-data term the gradient is not f_K's (the term the course once dropped)
    model.generator.zero_grad(set_to_none=True)
    fake_only = model.unrolled_generator_terms(x, model.generate(z), d_opt)["fake"]
    g_fake = _flat_params(torch.autograd.grad(fake_only, params))
    assert (g_fake - fd).norm() > 1e-3 * fd.norm()


def test_unrolled_terms_split_and_forms():
    model = UnrolledGAN(unroll_steps=2, **TINY)
    opts, x, z = _warm(model)
    terms = model.unrolled_generator_terms(x, model.generate(z), opts["discriminator"])
    total = model.unrolled_generator_loss(x, model.generate(z), opts["discriminator"])
    assert torch.allclose(terms["fake"] + terms["real"], total)
    assert float(terms["real"].detach()) < 0  # E log D_K(x) <= 0
    params = list(model.generator.parameters())
    g_real = _flat_params(torch.autograd.grad(terms["real"], params, retain_graph=True))
    assert g_real.norm() > 0  # reaches θ_G through θ_D^K
    first = model.unrolled_generator_terms(x, model.generate(z), opts["discriminator"], first_order=True)
    assert not first["real"].requires_grad
    k0 = UnrolledGAN(unroll_steps=0, **TINY).double()
    assert float(k0.unrolled_generator_terms(x, k0.generate(z), opts["discriminator"])["real"]) == 0.0
    assert UnrolledGAN(generator_form="minimax", **TINY).config()["generator_form"] == "minimax"
    assert "generator_form" not in UnrolledGAN(**TINY).config()
    with pytest.raises(ValueError, match="generator_form must be one of"):
        GAN(generator_form="wasserstein", **TINY)
    # the minimax fake term is E log(1 - D(G(z))), the non-saturating one -E log D(G(z))
    logits = torch.tensor([[-1.0, 0.5, 2.0]], dtype=torch.float64)
    d = torch.sigmoid(logits)
    assert float(generator_loss(logits, "minimax")) == pytest.approx(float(torch.log(1 - d).mean()))
    assert float(generator_loss(logits)) == pytest.approx(float(-torch.log(d).mean()))


# -- options of the dSprites InfoGAN: a fixed Q standard deviation, spectral normalisation ----
def test_fixed_q_std_is_a_scaled_squared_error():
    """q_std=σ: Q outputs only means for the continuous codes and the NLL is that of
    N(μ, σ²), i.e. (c − μ)²/2σ² + log σ + ½ log 2π (checked with torch.distributions)."""
    m = InfoGAN(codes="cat3,cont2", lam=0.3, q_std=0.5, **TINY)
    assert m.q_head[-1].weight.shape[-1] == 3 + 2  # logits and means, no log-std outputs
    torch.manual_seed(2)
    feats = torch.randn(1, 7, 4)
    _, _, cat, cont = m.sample_latent(7)
    logits, mu, log_std = m.q_outputs(features=feats)
    assert torch.allclose(log_std, torch.full_like(mu, math.log(0.5)))
    nll = -torch.distributions.Normal(mu, 0.5).log_prob(cont).sum(-1).mean()
    t = m.info_terms(feats, cat, cont)
    assert torch.allclose(t["q_cont"], nll, atol=1e-5)
    mse = ((cont - mu) ** 2).sum(-1).mean()
    assert torch.allclose(t["q_cont"], mse / (2 * 0.25) + 2 * (math.log(0.5) + 0.5 * math.log(2 * math.pi)),
                          atol=1e-5)
    for bad in (0, -1.0, float("inf"), True, "1"):
        with pytest.raises(ValueError, match="q_std"):
            InfoGAN(codes="cont2", q_std=bad, **TINY)


def test_spectral_norm_bounds_every_discriminator_weight():
    """After a few training-mode passes (power iterations), every weight of D and Q that the
    forward pass uses has largest singular value 1 (checked with torch.linalg.matrix_norm)."""
    torch.manual_seed(0)
    m = InfoGAN(codes="cont2", arch="conv32", width=4, noise_dim=3, spectral_norm=True)
    x = torch.rand(8, 1, 32, 32)
    for _ in range(30):
        m.q_outputs(x)
    layers = [layer for mod in (m.discriminator, m.q_head) for layer in mod.modules()
              if isinstance(layer, (torch.nn.Linear, torch.nn.Conv2d))]
    assert len(layers) == 3 + 1 + 2  # 2 convs + linear of the 32×32 trunk, the head, Q's two layers
    for layer in layers:
        w = layer.weight.detach().reshape(layer.weight.shape[0], -1)
        assert float(torch.linalg.matrix_norm(w, ord=2)) == pytest.approx(1.0, rel=1e-2)
    plain = InfoGAN(codes="cont2", arch="conv32", width=4, noise_dim=3)
    w = plain.discriminator.head.weight.detach()
    assert float(torch.linalg.matrix_norm(w, ord=2)) != pytest.approx(1.0, rel=1e-2)
    cfg = m.config()
    assert cfg["spectral_norm"] is True and "spectral_norm" not in plain.config()
    assert build_model("infogan", **cfg).config() == cfg
    with pytest.raises(ValueError, match="unrolling"):
        UnrolledInfoGAN(unroll_steps=2, codes="cont2", spectral_norm=True, **TINY)


def test_k0_generator_and_discriminator_steps_are_the_separate_passes():
    """The K = 0 generator objective reads D's features of G(z) once for both terms, and the
    discriminator step runs one pass over [real; fake]: the gradients equal those of the
    separate passes (D has no batch statistics)."""
    torch.manual_seed(4)
    m = InfoGAN(codes="cat3,cont2", arch="conv32", width=4, noise_dim=3, lam=0.4)
    opts = m.configure_optimizers(1e-3)
    x = torch.rand(6, 1, 32, 32)
    ref = copy.deepcopy(m)
    torch.manual_seed(9)
    z, c, cat, cont = ref.sample_latent(6)
    fake = ref.generate(z, c)
    g_loss = generator_loss(ref.discriminator(fake)) + ref.info_terms(ref.discriminator.trunk(fake), cat, cont)["info"]
    g_ref = torch.autograd.grad(g_loss, list(ref.generator.parameters()))
    fake = fake.detach()
    d_loss = gan_discriminator_loss(ref.discriminator(x), ref.discriminator(fake)) \
        + ref.info_terms(ref.discriminator.trunk(fake), cat, cont)["info"]
    d_params = list(ref.discriminator.parameters()) + list(ref.q_head.parameters())
    d_ref = torch.autograd.grad(d_loss, d_params)
    torch.manual_seed(9)
    _, total = m.generator_objective(x, m.generate(z, c), cat, cont, opts["discriminator"])
    g_got = torch.autograd.grad(total, list(m.generator.parameters()))
    for a, b in zip(g_got, g_ref):
        assert torch.allclose(a, b, atol=1e-6)
    torch.manual_seed(9)
    m.training_step(x, 0, opts)
    d_got = [p.grad for p in list(m.discriminator.parameters()) + list(m.q_head.parameters())]
    for a, b in zip(d_got, d_ref):
        assert torch.allclose(a, b, atol=1e-5)
