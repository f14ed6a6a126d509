"""Genetic groups as model terms, groups(id, ped) beside vm(id, ped), against an independent
dense computation: A by the tabular method and Q by its recursion written here (not the
package's), V = s2_a Z A Z' (+ s2_g Z Q Q'Z' for random groups) + s2_e I formed explicitly,
REML maximised by scipy, and BLUPs and PEVs from the dense mixed-model equations; then
simulated truth on a larger pedigree and the refusals."""
from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from scipy.optimize import minimize

import sparsereml as sr
from sparsereml.errors import AliasWarning

GROUPS = ["N", "S", "W"]


def _pedigree(seed: int, n: int, n_founders: int, means=(0.0, 6.0, 3.0), s2a=2.0):
    """Founders by group (parents written as the group), later individuals from random earlier
    parents; a founder may have one parent of each of two groups.  Returns the pedigree rows,
    the true genetic mean (Q g) and breeding value a of every individual."""
    rng = np.random.default_rng(seed)
    rows, mean, bv = [], [], []
    for k in range(n):
        if k < n_founders:
            gs, gd = rng.integers(0, 3, 2)
            rows.append((f"t{k}", GROUPS[gs], GROUPS[gd]))
            mean.append((means[gs] + means[gd]) / 2)
            bv.append(rng.normal(0, np.sqrt(s2a)))
        else:
            s, d = rng.choice(k, 2, replace=False)
            rows.append((f"t{k}", f"t{s}", f"t{d}"))
            mean.append((mean[s] + mean[d]) / 2)
            bv.append((bv[s] + bv[d]) / 2 + rng.normal(0, np.sqrt(s2a / 2)))
    return pd.DataFrame(rows, columns=["id", "sire", "dam"]), np.array(mean), np.array(bv)


def _dense_A_Q(rows: pd.DataFrame):
    """A (tabular method) and Q (q_i = (q_sire + q_dam) / 2, a group parent its unit vector) in
    the rows' order; every parent precedes its offspring in these pedigrees."""
    at = {i: k for k, i in enumerate(rows.id)}
    n = len(rows)
    A, Q = np.zeros((n, n)), np.zeros((n, len(GROUPS)))
    for i, (s, d) in enumerate(zip(rows.sire, rows.dam)):
        ps, pd_ = at.get(s), at.get(d)
        for j in range(i):
            A[i, j] = A[j, i] = 0.5 * ((A[j, ps] if ps is not None else 0) + (A[j, pd_] if pd_ is not None else 0))
        A[i, i] = 1 + (0.5 * A[ps, pd_] if ps is not None and pd_ is not None else 0)
        Q[i] = 0.5 * ((Q[ps] if ps is not None else np.eye(3)[GROUPS.index(s)])
                      + (Q[pd_] if pd_ is not None else np.eye(3)[GROUPS.index(d)]))
    return A, Q


def _reml(y, X, parts):
    """Dense REML: logL at variances theta for V = sum theta_k K_k (the last K_k = I)."""
    n, p = X.shape

    def loglik(theta):
        V = sum(t * K for t, K in zip(theta, parts))
        Vi = np.linalg.inv(V)
        XVX = X.T @ Vi @ X
        P = Vi - Vi @ X @ np.linalg.solve(XVX, X.T @ Vi)
        return -0.5 * ((n - p) * np.log(2 * np.pi) + np.linalg.slogdet(V)[1] + np.linalg.slogdet(XVX)[1]
                       + y @ P @ y), Vi, XVX

    return loglik


def _maximise(loglik, start):
    res = minimize(lambda z: -loglik(np.exp(z))[0], np.log(start), method="BFGS", options={"gtol": 1e-9})
    return np.exp(res.x), -res.fun


def _case(seed=3, n=220, n_founders=30):
    rows, mean, bv = _pedigree(seed, n, n_founders)
    rng = np.random.default_rng(seed + 100)
    rec = rows.id.iloc[n_founders // 2:].reset_index(drop=True)  # half the founders have no record
    take = np.arange(n_founders // 2, n)
    data = pd.DataFrame({"Tree": rec, "y": 10 + mean[take] + bv[take] + rng.normal(0, 1.5, take.size)})
    ped = sr.Pedigree(rows, groups=GROUPS)
    A, Q = _dense_A_Q(rows)
    Z = np.zeros((len(data), n))
    Z[np.arange(len(data)), take] = 1.0
    return data, ped, A, Q, Z


def _dense_mme_inverse(X, Zs, Ginvs, s2e):
    """C^-1 of the dense mixed-model equations [X Z]'[X Z]/s2e + blockdiag(0, G^-1)."""
    W = np.hstack([X] + Zs)
    C = W.T @ W / s2e
    at = X.shape[1]
    for Gi in Ginvs:
        C[at:at + Gi.shape[0], at:at + Gi.shape[0]] += Gi
        at += Gi.shape[0]
    return np.linalg.inv(C), W


def test_random_groups_match_dense_reml(backend):
    data, ped, A, Q, Z = _case()
    m = sr.fit("y ~ 1", "~ vm(Tree, ped) + groups(Tree, ped)", data=data, matrices={"ped": ped}, backend=backend)
    y, X = data.y.to_numpy(), np.ones((len(data), 1))
    loglik = _reml(y, X, [Z @ A @ Z.T, Z @ Q @ Q.T @ Z.T, np.eye(len(y))])
    theta, best = _maximise(loglik, np.array([2.0, 5.0, 2.0]))
    assert m.loglik == pytest.approx(best, abs=1e-6)
    np.testing.assert_allclose(m.varcomp["component"].to_numpy(), theta, rtol=1e-5)
    assert list(m.varcomp.index) == ["vm(Tree, ped)", "groups(Tree, ped)", "units"]
    # a, Q g and Q g + a with the PEV of Q g + a from the dense equations at the fit's variances
    s2a, s2g, s2e = m.theta
    Cinv, _ = _dense_mme_inverse(X, [Z, Z @ Q], [np.linalg.inv(A) / s2a, np.eye(3) / s2g], s2e)
    sol = Cinv @ (np.hstack([X, Z, Z @ Q]).T @ y / s2e)
    n = A.shape[0]
    a, g = sol[1:1 + n], sol[1 + n:]
    L = np.hstack([np.zeros((n, 1)), np.eye(n), Q])  # picks Q g + a
    bv = m.breeding_values("vm(Tree, ped)").loc[list(ped.ids)]
    order = [ped.ids.index(i) for i in ped.ids]
    np.testing.assert_allclose(bv["BLUP"].to_numpy(), a[order], rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(bv["total"].to_numpy(), (Q @ g + a)[order], rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(bv["std.error.total"].to_numpy(), np.sqrt(np.diag(L @ Cinv @ L.T))[order],
                               rtol=1e-6)
    np.testing.assert_allclose(m.blups("groups(Tree, ped)")["BLUP"].to_numpy(), g, rtol=1e-6, atol=1e-8)


def test_fixed_groups_match_dense_reml(backend):
    data, ped, A, Q, Z = _case(seed=5)
    with pytest.warns(AliasWarning, match="differences from the first, 'N'"):
        m = sr.fit("y ~ groups(Tree, ped)", "~ vm(Tree, ped)", data=data, matrices={"ped": ped}, backend=backend)
    y = data.y.to_numpy()
    X = np.column_stack([np.ones(len(y)), (Z @ Q)[:, 1:]])  # N is the base beside the intercept
    loglik = _reml(y, X, [Z @ A @ Z.T, np.eye(len(y))])
    theta, best = _maximise(loglik, np.array([2.0, 2.0]))
    assert m.loglik == pytest.approx(best, abs=1e-6)
    np.testing.assert_allclose(m.varcomp["component"].to_numpy(), theta, rtol=1e-5)
    # GLS estimates and standard errors of the group differences at the fit's variances
    _, Vi, XVX = loglik(m.theta)
    b = np.linalg.solve(XVX, X.T @ Vi @ y)
    se = np.sqrt(np.diag(np.linalg.inv(XVX)))
    fx = m.fixed.loc[["(Intercept)", "groups(Tree, ped)_S", "groups(Tree, ped)_W"]]
    np.testing.assert_allclose(fx["estimate"].to_numpy(), b, rtol=1e-6)
    np.testing.assert_allclose(fx["std.error"].to_numpy(), se, rtol=1e-6)
    s2a, s2e = m.theta
    Cinv, _ = _dense_mme_inverse(X, [Z], [np.linalg.inv(A) / s2a], s2e)
    n = A.shape[0]
    L = np.hstack([np.zeros((n, 1)), Q[:, 1:], np.eye(n)])  # Q g + a, g_N = 0
    bv = m.breeding_values("vm(Tree, ped)").loc[list(ped.ids)]
    sol = Cinv @ (np.hstack([X, Z]).T @ y / s2e)
    np.testing.assert_allclose(bv["total"].to_numpy(), L @ sol, rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(bv["std.error.total"].to_numpy(), np.sqrt(np.diag(L @ Cinv @ L.T)), rtol=1e-6)
    # the manual route (Q joined to the data as covariates) is the same model
    joined = data.join(sr.pedigree.groups.group_contributions(ped, data.Tree).reset_index(drop=True))
    m2 = sr.fit("y ~ lin(S) + lin(W)", "~ vm(Tree, p0)", data=joined, matrices={"p0": ped.without_groups()}, backend=backend)
    assert m2.loglik == pytest.approx(m.loglik, abs=1e-6)


@pytest.mark.parametrize("how", ["fixed", "random"])
def test_simulated_group_means_recovered(how, backend):
    # group means N 0, S 6, W 3 on 2,000 trees: the fixed differences within 3 SE; random groups'
    # intercept + BLUP per group within 3 SE of prediction (a loose but failing-capable check)
    rows, mean, bv = _pedigree(11, 2200, 90)
    rng = np.random.default_rng(12)
    data = pd.DataFrame({"Tree": rows.id.iloc[90:].to_numpy()})
    data["y"] = mean[90:] + bv[90:] + rng.normal(0, 1.5, len(data))
    ped = sr.Pedigree(rows, groups=GROUPS)
    if how == "fixed":
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", AliasWarning)
            m = sr.fit("y ~ groups(Tree, ped)", "~ vm(Tree, ped)", data=data, matrices={"ped": ped}, backend=backend)
        for g, true in (("S", 6.0), ("W", 3.0)):
            est, se = m.fixed.loc[f"groups(Tree, ped)_{g}", ["estimate", "std.error"]]
            assert abs(est - true) < 3 * se, (g, est, se)
        assert abs(m.varcomp.loc["vm(Tree, ped)", "component"] - 2.0) < 3 * m.varcomp.loc["vm(Tree, ped)", "std.error"]
    else:
        m = sr.fit("y ~ 1", "~ vm(Tree, ped) + groups(Tree, ped)", data=data, matrices={"ped": ped}, backend=backend)
        g = m.blups("groups(Tree, ped)")
        diff = g["BLUP"] - g["BLUP"].mean()
        for name, true in zip(GROUPS, (-3.0, 3.0, 0.0)):
            assert abs(diff[name] - true) < 3 * g.loc[name, "std.error"], (name, diff[name])
    bvs = m.breeding_values("vm(Tree, ped)")
    truth = pd.Series(mean + bv, index=rows.id)
    # the total genetic value tracks the truth better than the within-group deviation a
    assert np.corrcoef(bvs["total"], truth[bvs.index])[0, 1] > np.corrcoef(bvs["BLUP"], truth[bvs.index])[0, 1] + 0.05


def test_group_refusals(backend):
    data, ped, _, _, _ = _case()
    mats = {"ped": ped}
    with pytest.raises(sr.ModelError, match=r"pedigree 'ped' has genetic groups .*groups\(Tree, ped\) in the fixed"):
        sr.fit("y ~ 1", "~ vm(Tree, ped)", data=data, matrices=mats, backend=backend)
    m = sr.fit("y ~ 1", "~ vm(Tree, ped)", data=data, matrices={"ped": ped.without_groups()}, backend=backend)
    assert "total" not in m.breeding_values("vm(Tree, ped)")
    plain = sr.Pedigree(ped.to_frame()[["id", "sire", "dam"]])
    with pytest.raises(sr.ModelError, match="a pedigree without genetic groups"):
        sr.fit("y ~ groups(Tree, ped)", "~ vm(Tree, ped)", data=data, matrices={"ped": plain}, backend=backend)
    with pytest.raises(sr.ModelError, match=r"goes with the additive term it splits, vm\(Tree, ped\)"):
        sr.fit("y ~ 1", "~ groups(Tree, ped)", data=data, matrices=mats, backend=backend)
    with pytest.raises(sr.ModelError, match="fitted either fixed .* or random"):
        sr.fit("y ~ groups(Tree, ped)", "~ vm(Tree, ped) + groups(Tree, ped)", data=data, matrices=mats,
               backend=backend)
    with pytest.raises(sr.FormulaError, match="groups\\(\\) stands alone"):
        sr.fit("y ~ 1", "~ vm(Tree, ped) + Trial:groups(Tree, ped)", data=data.assign(Trial=1), matrices=mats)
    # a group whose descendants have no record: W's founders and their offspring dropped
    rows = ped.to_frame()[["id", "sire", "dam"]]
    Q = sr.pedigree.groups.group_contributions(ped)
    no_w = data[data.Tree.map(Q["W"]) == 0]
    assert len(no_w) > 3
    with pytest.raises(sr.ModelError, match="group 'W' has no descendant among the records"):
        sr.fit("y ~ 1", "~ vm(Tree, ped) + groups(Tree, ped)", data=no_w, matrices=mats, backend=backend)
    with pytest.raises(sr.ModelError, match=r"predict\(\) with fixed genetic groups"):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", AliasWarning)
            sr.fit("y ~ groups(Tree, ped)", "~ vm(Tree, ped)", data=data, matrices=mats, backend=backend).predict("Tree")
    with pytest.raises(sr.FormulaError, match="several traits are not supported"):
        sr.fit("cbind(y, y2) ~ trait + groups(Tree, ped)", "~ vm(Tree, ped)", data=data.assign(y2=data.y),
               matrices=mats, backend=backend)
    # a group named like an individual is refused when the pedigree is read (issue 17)
    clash = pd.concat([rows.replace({"0": "N"}), pd.DataFrame({"id": ["N"], "sire": ["S"], "dam": ["S"]})])
    with pytest.raises(sr.DataError, match="group 'N' is also an individual"):
        sr.Pedigree(clash, groups=GROUPS)


def test_groups_with_the_additive_variance_match_dense_reml(backend):
    # ASReml's convention (!Goffset 1): u = Q g + a, g ~ N(0, I s2_a), so V = s2_a Z (A + Q Q') Z' + s2_e I
    data, ped, A, Q, Z = _case(seed=7)
    inv = sr.pedigree.groups.groups_inverse(ped, offset=1.0)
    m = sr.fit("y ~ 1", "~ vm(Tree, pg)", data=data, matrices={"pg": inv}, backend=backend)
    y, X = data.y.to_numpy(), np.ones((len(data), 1))
    loglik = _reml(y, X, [Z @ (A + Q @ Q.T) @ Z.T, np.eye(len(y))])
    theta, best = _maximise(loglik, np.array([2.0, 2.0]))
    assert m.loglik == pytest.approx(best, abs=1e-6)
    np.testing.assert_allclose(m.theta, theta, rtol=1e-5)
    # the log-determinant given with the inverse is the one its factorisation gives
    plain = sr.Inverse(inv.matrix, inv.ids)
    m2 = sr.fit("y ~ 1", "~ vm(Tree, pg)", data=data, matrices={"pg": plain}, backend=backend)
    assert m2.loglik == pytest.approx(m.loglik, abs=1e-8)
    bv = m.breeding_values("vm(Tree, pg)")
    assert list(bv.index[-3:]) == GROUPS  # the groups' own effects g after the individuals' Q g + a
    with pytest.raises(sr.ModelError, match="offset must be positive"):
        sr.pedigree.groups.groups_inverse(ped, offset=0.0)


def test_command_line_fits_groups_of_a_pedigree_file(tmp_path, capsys):
    """Reference: sr.fit of the same model in Python (--groups gives the pedigree its groups)."""
    import json

    from sparsereml.cli import main

    data, ped, *_ = _case()
    rows = _pedigree(3, 220, 30)[0]
    rows.to_csv(tmp_path / "ped.csv", index=False)
    data.to_csv(tmp_path / "trees.csv", index=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", AliasWarning)
        ref = sr.fit("y ~ groups(Tree, ped)", "~ vm(Tree, ped)", data=data, matrices={"ped": ped})
        args = ["fit", str(tmp_path / "trees.csv"), "--fixed", "y ~ groups(Tree, ped)", "--random", "~ vm(Tree, ped)",
                "--pedigree", f"ped={tmp_path / 'ped.csv'}", "--json"]
        assert main(args + ["--groups", "ped=" + ",".join(GROUPS)]) == 0
    out = json.loads(capsys.readouterr().out)
    assert abs(out["loglik"] - ref.loglik) <= 1e-9 * abs(ref.loglik)
    # without --groups the group names are unknown ids; a --groups for no pedigree is refused by name
    assert main(args + ["--groups", "other=N,S"]) == 2
    assert "--groups other=...: no --pedigree other=FILE" in capsys.readouterr().err
    assert main(args + ["--groups", "ped="]) == 2
    assert "--groups wants NAME=GROUP1,GROUP2" in capsys.readouterr().err
