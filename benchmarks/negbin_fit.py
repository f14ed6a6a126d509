"""A negative binomial GLMM on the default network (184,413 trees): counts simulated from the
trees' dbh (mu = exp(1 + 0.3 z), z the standardised dbh; nbinom2 with theta = 2), fitted
``count ~ Trial``, random ``~ Trial:Block + Mother``.  Prints the best of three warm fits, the
information step's seconds, logL and theta.

    PYTHONPATH=src .venv/bin/python benchmarks/negbin_fit.py
"""
import time, numpy as np, sparsereml as sr
df, _ = sr.datasets.trial_network()
z = (df["dbh"] - df["dbh"].mean()) / df["dbh"].std()
rng = np.random.default_rng(3)
mu = np.exp(1.0 + 0.3 * z.to_numpy())
df = df.assign(count=rng.negative_binomial(2.0, 2.0 / (2.0 + mu)))
sr.fit("count ~ Trial", "~ Trial:Block + Mother", data=df, family="negative.binomial")
ts = []
for _ in range(3):
    t0 = time.perf_counter(); m = sr.fit("count ~ Trial", "~ Trial:Block + Mother", data=df, family="negative.binomial"); ts.append(time.perf_counter() - t0)
print("best %.2f s  information %.2f s  logL %.6f theta %.6f" % (min(ts), m.seconds["information"], m.loglik, m.varcomp.loc["theta", "component"]))
