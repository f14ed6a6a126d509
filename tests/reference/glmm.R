## ---------------------------------------------------------------------------
## glmm.R -- reference numbers for generalized linear mixed models (issue 18).
##
## What the numbers are
##   * method = "laplace": maximum-likelihood fits with the Laplace approximation
##     (glmer, nAGQ = 1; glmmTMB, Laplace, ML), side by side, with the largest
##     relative difference between the two packages.
##   * method = "pql": ASReml-style PQL, computed here in R: start from glm()
##     (fixed effects only), then repeat { eta -> working variate
##     z = eta + (y - mu) / (dmu/deta) and weights w = prior_w (dmu/deta)^2 / V(mu);
##     REML fit of the linear mixed model of z on the same fixed and random terms,
##     prior weights w, residual (dispersion) FIXED at 1; eta = X b + Z u (BLUPs) }
##     until max_k |sigma2_k(new) - sigma2_k(old)| / sigma2_k(old) < 1e-8.
##     The REML fit of each working LMM is AI-REML written below (score and
##     average information from the mixed-model equations, iterated to 1e-12
##     relative); the same PQL iteration is rerun with glmmTMB (gaussian,
##     weights = w, REML = TRUE, dispersion mapped to 1) as a second route, and
##     glmmTMB is also fitted once to the final working variate of the AI-REML
##     route (its REML logLik of the final working LMM is recorded).
##     MASS::glmmPQL is NOT this method (ML working fits, dispersion estimated);
##     it is recorded separately for information only.
##
## Cases (data written next to this file, so the Python tests need no R)
##   cbpp_logit, cbpp_probit, cbpp_cloglog
##       lme4::cbpp (glmm_cbpp.csv): cbind(incidence, size - incidence) ~ period
##       + (1 | herd), binomial with logit / probit / cloglog link.
##   cbpp_logit_proportion
##       incidence/size ~ period + (1 | herd), weights = size (same model as
##       cbpp_logit; both logLiks recorded exactly as each package reports them).
##   grouseticks_poisson
##       lme4::grouseticks (glmm_grouseticks.csv): TICKS ~ YEAR + HEIGHT_c
##       + (1 | BROOD) + (1 | LOCATION), Poisson log; HEIGHT_c = (HEIGHT -
##       mean(HEIGHT)) / sd(HEIGHT) is a column of the CSV.
##   grouseticks_nbinom2
##       the same model, glmmTMB family = nbinom2 (var = mu + mu^2 / theta;
##       theta = sigma(fit)); glmer.nb recorded beside it for information.
##   progeny_probit, progeny_logit
##       simulated binary progeny trial (glmm_progeny.csv, set.seed(20180)):
##       4 trials (fixed Trial), 6 blocks per trial (random Trial:Block), 60
##       mothers crossed with trials (random Mother), 4000 trees; survival from a
##       probit liability: trial thresholds for 60/70/80/90 % survival, block
##       variance 0.1, mother variance 0.15, residual 1.
##       surv ~ Trial + (1 | Trial:Block) + (1 | Mother).
##   cones_poisson_offset
##       simulated cone counts (glmm_cones.csv, set.seed(4417)): 2000 trees,
##       4 trials x 5 blocks, 50 mothers, count ~ x + offset(log(exposure))
##       + (1 | Mother) + (1 | Trial:Block), Poisson log.
##   pql_progeny_probit, pql_cbpp_logit
##       the PQL reference described above for progeny_probit and cbpp_logit.
##
## glmer control.  Every glmer fit here uses
##   glmerControl(optimizer = "bobyqa", optCtrl = list(maxfun = 1e5), tolPwrss = 1e-12)
## The tolPwrss (PIRLS convergence) default 1e-7 stops the inner iteration of
## glmer short enough that the Laplace objective it maximises is off by ~3e-4 in
## logLik on cbpp, and the estimates are ~6e-4 (relative) away from glmmTMB and
## from glmer with tolPwrss = 1e-12 (both of which agree to ~1e-6).  The fit with
## bobyqa, maxfun = 1e5 and the default tolPwrss is recorded in
## each case as "glmer_default_tolPwrss" with its difference from the reported fit.
##
## Laplace for non-canonical links.  glmer and glmmTMB agree (~1e-5) only for canonical
## links (logit, log).  For probit and cloglog glmer's Laplace uses the PIRLS (Fisher,
## expected-information) weights in its log-determinant, glmmTMB the observed Hessian, so
## they maximise different functions: cbpp probit/cloglog differ by ~4e-3 (relative) and
## 0.04 in logLik, progeny probit by ~5e-3 and 0.34.  For the binomial cases "laplace_check"
## writes both approximations out in R (laplace_ll below), maximises each, and shows which
## package each one reproduces.  "glmmTMB$polished" re-optimises glmmTMB's own objective
## tightly (glmmTMB's default stop is ~1e-4 relative short on progeny_probit).
##
## Per case in glmm.json: call (the exact R text evaluated), family, link, nobs,
## fixef (R names), fixef_se, variances {grouping factor: variance}, logLik,
## minus2logLik, deviance (see deviance_note), convergence (optimizer code,
## messages, warnings), ranef {term: {level: conditional mode}} (all levels),
## condvar {term: {level: lme4 postVar}}, pev_with_fixed (diagonal of the
## random block of the inverse of the full mixed-model matrix at the mode,
## ASReml's PEV), glmmTMB {the same from glmmTMB}, max_rel_diff_glmer_glmmTMB.
## Numbers are written with 15 significant digits (jsonlite digits = NA).
##
## Rerun from the repository root (about a minute):
##   Rscript tests/reference/glmm.R
## Reruns are not bit-for-bit: glmer's bobyqa path flips between runs (seen even with
## OPENBLAS_NUM_THREADS=1; floating-point sums in OpenBLAS kernels, it seems), which moves its
## estimates, modes and conditional variances by up to ~1e-5 relative and fixef_se (lme4's
## finite-difference Hessian) by up to ~1e-4.  glmmTMB, the laplace checks and PQL repeat.
## Written with R 4.2.2 Patched (2022-11-10 r83330), lme4 1.1.31,
## glmmTMB 1.1.5 (TMB 1.9.2), MASS 7.3.58.2, Matrix 1.5.3, jsonlite 1.8.4.
## ---------------------------------------------------------------------------

suppressPackageStartupMessages({
  library(lme4); library(glmmTMB); library(MASS); library(Matrix); library(jsonlite)
})

out_dir <- "tests/reference"
stopifnot(dir.exists(out_dir))
t_start <- Sys.time()

CTRL_TEXT <- 'glmerControl(optimizer = "bobyqa", optCtrl = list(maxfun = 1e5), tolPwrss = 1e-12)'
CTRL_DEFAULT_TEXT <- 'glmerControl(optimizer = "bobyqa", optCtrl = list(maxfun = 1e5))'

named_list <- function(x) as.list(setNames(unname(x), names(x)))

## Evaluate `expr`, collecting warnings instead of printing them.
with_warnings <- function(expr) {
  w <- character()
  val <- withCallingHandlers(expr, warning = function(c) {
    w <<- c(w, conditionMessage(c)); invokeRestart("muffleWarning")
  })
  list(value = val, warnings = w)
}

## Evaluate the call text in an environment holding `data`.
run_text <- function(text, data) {
  env <- new.env(parent = globalenv()); env$dat <- data
  with_warnings(eval(parse(text = text), envir = env))
}

rel_diff <- function(a, b) max(abs(a - b) / abs(a))

## ---- extractors --------------------------------------------------------------------------
variances_glmer <- function(m) {
  vc <- as.data.frame(VarCorr(m)); stopifnot(all(is.na(vc$var2)), !anyDuplicated(vc$grp))
  as.list(setNames(vc$vcov, vc$grp))
}
variances_tmb <- function(t) {
  vc <- VarCorr(t)$cond
  as.list(setNames(vapply(vc, function(s) s[1, 1], 0), names(vc)))
}
ranef_list <- function(df, attr_name = NULL) {
  x <- if (is.null(attr_name)) df[["(Intercept)"]] else as.numeric(attr(df, attr_name)[1, 1, ])
  named_list(setNames(x, rownames(df)))
}

## Conditional variances from the mixed-model matrix at glmer's mode:
##   W = PIRLS working weights at the mode, G = diag(variances).
##   condvar_check = diag((Z'WZ + G^-1)^-1)           (should equal lme4's postVar)
##   pev_with_fixed = diag of the random block of [X'WX X'WZ; Z'WX Z'WZ + G^-1]^-1
pev_glmer <- function(m) {
  W <- Diagonal(x = m@resp$sqrtWrkWt()^2)
  X <- getME(m, "X"); Z <- getME(m, "Z"); fl <- getME(m, "flist"); cn <- getME(m, "cnms")
  Gp <- getME(m, "Gp"); vc <- variances_glmer(m)
  gdiag <- unlist(lapply(seq_along(cn), function(k) rep(vc[[names(cn)[k]]], Gp[k + 1] - Gp[k])))
  H <- as.matrix(crossprod(Z, W %*% Z)) + diag(1 / gdiag, length(gdiag))
  cv <- diag(solve(H))
  XWX <- as.matrix(crossprod(X, W %*% X)); XWZ <- as.matrix(crossprod(X, W %*% Z))
  C <- rbind(cbind(XWX, XWZ), cbind(t(XWZ), H)); p <- ncol(X)
  pev <- diag(solve(C))[-(1:p)]
  split_terms <- function(v) {
    out <- list()
    for (k in seq_along(cn)) {
      nm <- names(cn)[k]; idx <- (Gp[k] + 1):Gp[k + 1]
      out[[nm]] <- named_list(setNames(v[idx], levels(fl[[nm]])))
    }
    out
  }
  list(condvar = split_terms(cv), pev = split_terms(pev))
}

summ_glmer <- function(m, ranef_terms) {
  re <- ranef(m, condVar = TRUE); pv <- pev_glmer(m)
  condvar <- lapply(setNames(ranef_terms, ranef_terms), function(g) ranef_list(re[[g]], "postVar"))
  check <- max(sapply(ranef_terms, function(g)
    max(abs(unlist(condvar[[g]]) - unlist(pv$condvar[[g]])) / unlist(condvar[[g]]))))
  ll <- logLik(m); fe <- fixef(m)
  list(fixef = named_list(fe),
       fixef_se = named_list(setNames(sqrt(diag(as.matrix(vcov(m)))), names(fe))),
       variances = variances_glmer(m),
       theta = named_list(getME(m, "theta")),
       logLik = as.numeric(ll), logLik_df = attr(ll, "df"),
       minus2logLik = -2 * as.numeric(ll),
       deviance = deviance(m),
       sum_sq_deviance_residuals = sum(residuals(m, type = "deviance")^2),
       sum_sq_spherical_u = sum(getME(m, "u")^2),
       nobs = nobs(m),
       ranef = lapply(setNames(ranef_terms, ranef_terms), function(g) ranef_list(re[[g]])),
       condvar = condvar,
       condvar_recomputed_max_rel_diff = check,
       pev_with_fixed = pv$pev[ranef_terms])
}

conv_glmer <- function(m, w) {
  list(optimizer = m@optinfo$optimizer, code = m@optinfo$conv$opt,
       feval = m@optinfo$feval,
       lme4_messages = as.list(m@optinfo$conv$lme4$messages),
       max_abs_gradient = if (!is.null(m@optinfo$derivs)) max(abs(m@optinfo$derivs$gradient)) else NA,
       warnings = as.list(w), converged = length(w) == 0 && m@optinfo$conv$opt == 0 &&
         length(m@optinfo$conv$lme4$messages) == 0)
}

summ_tmb <- function(t, w, ranef_terms) {
  re <- ranef(t, condVar = TRUE)$cond; ll <- logLik(t); fe <- fixef(t)$cond
  out <- list(fixef = named_list(fe),
       fixef_se = named_list(setNames(sqrt(diag(vcov(t)$cond)), names(fe))),
       variances = variances_tmb(t),
       logLik = as.numeric(ll), logLik_df = attr(ll, "df"),
       minus2logLik = -2 * as.numeric(ll),
       nobs = nobs(t),
       ranef = lapply(setNames(ranef_terms, ranef_terms), function(g) ranef_list(re[[g]])),
       condVar_glmmTMB = lapply(setNames(ranef_terms, ranef_terms), function(g) ranef_list(re[[g]], "condVar")),
       condVar_note = paste("glmmTMB's condVar comes from TMB's sdreport: it includes the uncertainty",
                            "of the fixed effects and the variance parameters, so it is larger than",
                            "lme4's postVar (and than pev_with_fixed)."),
       convergence = list(code = t$fit$convergence, message = t$fit$message,
                          iterations = t$fit$iterations, pdHess = t$sdr$pdHess,
                          max_abs_gradient = max(abs(t$sdr$gradient.fixed)),
                          warnings = as.list(w),
                          converged = length(w) == 0 && t$fit$convergence == 0 && isTRUE(t$sdr$pdHess)))
  if (!identical(family(t)$family, "binomial") && !identical(family(t)$family, "poisson"))
    out$sigma <- sigma(t)
  out
}

## glmmTMB's default nlminb stops with gradients up to ~1e-3 (progeny_probit: ~1e-4 relative
## from the optimum).  Polish: rerun nlminb on the fit's own TMB objective (same Laplace
## objective, AD gradient) from its estimates with rel.tol = 1e-14.  Run after every other
## extraction from `t` (it moves the objective's internal state).
polish_tmb <- function(t) {
  obj <- t$obj; p0 <- t$fit$par; pn <- names(p0)
  vn <- names(VarCorr(t)$cond)
  stopifnot(sum(pn == "theta") == length(vn),
            max(abs(exp(2 * p0[pn == "theta"]) - unlist(variances_tmb(t))[vn])) < 1e-10)
  o <- nlminb(p0, obj$fn, obj$gr, control = list(rel.tol = 1e-14, eval.max = 2000, iter.max = 2000))
  out <- list(description = "nlminb(fit$par, obj$fn, obj$gr, rel.tol = 1e-14) on the glmmTMB fit's TMB objective",
              fixef = named_list(setNames(o$par[pn == "beta"], names(fixef(t)$cond))),
              variances = named_list(setNames(exp(2 * o$par[pn == "theta"]), vn)),
              logLik = -o$objective, message = o$message,
              max_abs_gradient_before = max(abs(obj$gr(p0))),
              max_abs_gradient = max(abs(obj$gr(o$par))))
  if (any(pn == "betad")) out$sigma <- exp(o$par[pn == "betad"])
  out
}

compare <- function(g, t) {
  fe <- names(g$fixef); vv <- names(g$variances)
  stopifnot(setequal(fe, names(t$fixef)), setequal(vv, names(t$variances)))
  d_fe <- rel_diff(unlist(g$fixef[fe]), unlist(t$fixef[fe]))
  d_vc <- rel_diff(unlist(g$variances[vv]), unlist(t$variances[vv]))
  u_g <- unlist(g$ranef); u_t <- unlist(t$ranef[names(g$ranef)])
  list(max_rel_diff = max(d_fe, d_vc),
       fixef = d_fe, variances = d_vc,
       logLik_abs_diff = abs(g$logLik - t$logLik),
       ranef_max_abs_diff_over_max_abs = max(abs(u_g - u_t)) / max(abs(u_g)),
       definition = "max over fixed effects and variances of |glmer - glmmTMB| / |glmer|; logLik absolute")
}

## One GLMM case: glmer (tight), glmer (default tolPwrss), glmmTMB.
glmm_case <- function(name, formula_text, data, family_text, ranef_terms, weights_text = NULL,
                      tmb_family_text = family_text) {
  cat(sprintf("== %s\n", name))
  wt <- if (is.null(weights_text)) "" else paste0(", weights = ", weights_text)
  glmer_call <- sprintf("glmer(%s, data = dat, family = %s%s, nAGQ = 1, control = %s)",
                        formula_text, family_text, wt, CTRL_TEXT)
  glmer_call_default <- sprintf("glmer(%s, data = dat, family = %s%s, nAGQ = 1, control = %s)",
                                formula_text, family_text, wt, CTRL_DEFAULT_TEXT)
  tmb_call <- sprintf("glmmTMB(%s, data = dat, family = %s%s)", formula_text, tmb_family_text, wt)
  tm <- system.time(fg <- run_text(glmer_call, data))[["elapsed"]]
  fd <- run_text(glmer_call_default, data)
  tt <- system.time(ft <- run_text(tmb_call, data))[["elapsed"]]
  m <- fg$value; t <- ft$value
  g <- summ_glmer(m, ranef_terms); g$convergence <- conv_glmer(m, fg$warnings)
  g$timing_seconds <- tm
  tb <- summ_tmb(t, ft$warnings, ranef_terms); tb$call <- tmb_call; tb$timing_seconds <- tt
  md <- fd$value
  gd <- list(call = glmer_call_default,
             fixef = named_list(fixef(md)), variances = variances_glmer(md),
             logLik = as.numeric(logLik(md)),
             convergence = conv_glmer(md, fd$warnings))
  gd$max_rel_diff_to_reported_glmer <- max(rel_diff(unlist(g$fixef), unlist(gd$fixef)),
                                           rel_diff(unlist(g$variances), unlist(gd$variances[names(g$variances)])))
  gd$max_rel_diff_to_glmmTMB <- max(rel_diff(unlist(gd$fixef), unlist(tb$fixef[names(gd$fixef)])),
                                    rel_diff(unlist(gd$variances), unlist(tb$variances[names(gd$variances)])))
  fam <- family(m)
  cmp <- compare(g, tb)
  tb$polished <- polish_tmb(t)
  cmp_p <- compare(g, c(tb$polished, list(ranef = tb$ranef)))
  tb$polished$max_rel_diff_to_glmmTMB_as_fitted <- max(
    rel_diff(unlist(tb$polished$fixef), unlist(tb$fixef[names(tb$polished$fixef)])),
    rel_diff(unlist(tb$polished$variances), unlist(tb$variances[names(tb$polished$variances)])))
  cat(sprintf("   glmer logLik %.8f  glmmTMB %.8f  max rel diff %.2e (polished %.2e)  (default tolPwrss: %.2e)  conv %s/%s\n",
              g$logLik, tb$logLik, cmp$max_rel_diff, cmp_p$max_rel_diff, gd$max_rel_diff_to_reported_glmer,
              g$convergence$converged, tb$convergence$converged))
  c(list(call = glmer_call, family = fam$family, link = fam$link),
    g, list(glmmTMB = tb, max_rel_diff_glmer_glmmTMB = cmp$max_rel_diff, glmer_vs_glmmTMB = cmp,
            max_rel_diff_glmer_glmmTMB_polished = cmp_p$max_rel_diff,
            glmer_default_tolPwrss = gd))
}

## Design of the fixed and (1 | g) random terms, as lme4 builds them (same level order).
design <- function(formula, data) {
  lf <- lFormula(formula, data = data, control = lmerControl(check.nobs.vs.nlev = "ignore",
                                                              check.nobs.vs.nRE = "ignore"))
  rt <- lf$reTrms; K <- length(rt$cnms)
  Zt <- rt$Zt
  Zlist <- lapply(seq_len(K), function(k) t(Zt[(rt$Gp[k] + 1):rt$Gp[k + 1], , drop = FALSE]))
  names(Zlist) <- names(rt$cnms)
  levs <- lapply(names(Zlist), function(g) levels(rt$flist[[g]])); names(levs) <- names(Zlist)
  list(X = lf$X, Zlist = Zlist, levels = levs)
}

## Independent Laplace approximation (for the check of each package's objective).
## log L(beta, s2) ~= log p(y | u*) - u*'G^-1 u*/2 - log|G|/2 - log|Z'HZ + G^-1|/2 at the mode u*,
## with H = diag(h): "observed" h = -d2 log p / d eta2 (true Laplace; glmmTMB), or
## "expected" h = prior_w (dmu/deta)^2 / V(mu) (Fisher / PIRLS weights; glmer).  The two are
## equal for canonical links (logit, log), not for probit or cloglog.
laplace_ll <- function(beta, s2, ds, y, pw, fam, logdens, type, state) {
  Z <- state$Z; q <- vapply(ds$Zlist, ncol, 1L); gi <- rep(1 / s2, q)
  eta0 <- as.vector(ds$X %*% beta); u <- state$u
  for (it in 1:100) {                                   # Fisher-scoring Newton for the mode
    eta <- eta0 + as.vector(Z %*% u); mu <- fam$linkinv(eta); d1 <- fam$mu.eta(eta); V <- fam$variance(mu)
    g <- as.vector(crossprod(Z, pw * (y - mu) * d1 / V)) - gi * u
    Hf <- crossprod(Z, Diagonal(x = pw * d1^2 / V) %*% Z) + Diagonal(x = gi)
    du <- as.vector(solve(Hf, g)); u <- u + du
    if (max(abs(du)) < 1e-12) break
  }
  eta <- eta0 + as.vector(Z %*% u); mu <- fam$linkinv(eta); d1 <- fam$mu.eta(eta); V <- fam$variance(mu)
  h <- pw * d1^2 / V
  if (type == "observed") {                             # - d/deta [pw (y - mu) mu'/V]
    e <- 1e-5; r <- function(x) fam$mu.eta(x) / fam$variance(fam$linkinv(x))
    h <- h - pw * (y - mu) * (r(eta + e) - r(eta - e)) / (2 * e)
  }
  H <- crossprod(Z, Diagonal(x = h) %*% Z) + Diagonal(x = gi)
  state$u <- u
  sum(logdens(mu)) - 0.5 * sum(gi * u^2) - 0.5 * sum(q * log(s2)) -
    0.5 * as.numeric(determinant(H, logarithm = TRUE)$modulus)
}

## Maximise laplace_ll of both types from the glmer estimates; compare with the packages.
laplace_check <- function(case, formula, data, y, pw, fam, logdens) {
  ds <- design(formula, data); Z <- do.call(cbind, ds$Zlist)
  vn <- names(ds$Zlist); fn <- colnames(ds$X); p <- length(fn)
  one <- function(type) {
    state <- new.env(); state$Z <- Z; state$u <- rep(0, ncol(Z))
    obj <- function(par) -laplace_ll(par[1:p], exp(par[-(1:p)]), ds, y, pw, fam, logdens, type, state)
    st <- c(unlist(case$fixef[fn]), log(unlist(case$variances[vn])))
    o <- nlminb(st, obj, control = list(rel.tol = 1e-14, x.tol = 1e-12, eval.max = 5000, iter.max = 2000))
    o2 <- optim(o$par, obj, method = "BFGS", control = list(reltol = 1e-15, maxit = 1000))
    if (o2$value < o$objective) o <- list(par = o2$par, objective = o2$value, convergence = o2$convergence)
    at_glmer <- -obj(c(unlist(case$fixef[fn]), log(unlist(case$variances[vn]))))
    at_tmb <- -obj(c(unlist(case$glmmTMB$fixef[fn]), log(unlist(case$glmmTMB$variances[vn]))))
    fe <- setNames(o$par[1:p], fn); vc <- setNames(exp(o$par[-(1:p)]), vn)
    list(fixef = named_list(fe), variances = named_list(vc), logLik = -o$objective,
         convergence = o$convergence,
         logLik_at_glmer_estimates = at_glmer, logLik_at_glmmTMB_estimates = at_tmb,
         max_rel_diff_to_glmer = max(rel_diff(fe, unlist(case$fixef[fn])), rel_diff(vc, unlist(case$variances[vn]))),
         max_rel_diff_to_glmmTMB = max(rel_diff(fe, unlist(case$glmmTMB$fixef[fn])),
                                       rel_diff(vc, unlist(case$glmmTMB$variances[vn]))))
  }
  out <- list(
    description = paste("Laplace approximation written out in R (this file, laplace_ll), maximised over",
      "fixed effects and log variances (nlminb then BFGS).  observed: Hessian of the log-likelihood in",
      "the random effects at the mode (the true Laplace approximation; what glmmTMB computes by AD).",
      "expected: the Fisher (PIRLS) weights prior_w (dmu/deta)^2 / V(mu) in its place (what glmer",
      "computes).  They coincide for canonical links (logit, log)."),
    observed = one("observed"), expected = one("expected"))
  cat(sprintf("   Laplace check: observed logLik %.8f (vs glmmTMB %.2e), expected logLik %.8f (vs glmer %.2e)\n",
              out$observed$logLik, out$observed$max_rel_diff_to_glmmTMB,
              out$expected$logLik, out$expected$max_rel_diff_to_glmer))
  out
}

data_check <- function(d) {
  num <- names(d)[vapply(d, is.numeric, TRUE)]
  list(nrow = nrow(d), columns = names(d),
       column_sums = lapply(setNames(num, num), function(v) sum(d[[v]])),
       levels = lapply(Filter(is.factor, d), nlevels))
}

res <- list(
  created = format(Sys.time(), tz = "UTC", usetz = TRUE),
  generator = "tests/reference/glmm.R",
  versions = list(R = R.version.string,
                  lme4 = as.character(packageVersion("lme4")),
                  glmmTMB = as.character(packageVersion("glmmTMB")),
                  TMB = as.character(packageVersion("TMB")),
                  MASS = as.character(packageVersion("MASS")),
                  Matrix = as.character(packageVersion("Matrix")),
                  jsonlite = as.character(packageVersion("jsonlite")),
                  BLAS = extSoftVersion()[["BLAS"]]),
  glmer_control = CTRL_TEXT,
  glmer_control_note = paste(
    "tolPwrss = 1e-12 because glmer's default PIRLS tolerance (1e-7) leaves the Laplace",
    "objective ~3e-4 (logLik) short on cbpp and the estimates ~6e-4 relative from the optimum;",
    "each case also records the fit with the default tolPwrss as glmer_default_tolPwrss."),
  deviance_note = paste(
    "deviance (glmer) is lme4's deviance(): for a GLMM the conditional deviance, i.e. the sum of",
    "squared deviance residuals at the conditional modes (sum_sq_deviance_residuals); it is not",
    "-2 logLik (minus2logLik).  glmmTMB 1.1.5 returns no deviance; only minus2logLik is given."),
  logLik_note = paste(
    "logLik is what each package reports: the Laplace-approximated marginal log-likelihood",
    "including the full density constants: binomial log(choose(size, k)) for cbind and",
    "proportion-with-weights data (0 for 0/1 data), Poisson -log(y!), nbinom2 lgamma terms."),
  laplace_note = paste(
    "For canonical links (binomial logit, Poisson log) glmer and glmmTMB maximise the same Laplace",
    "approximation and agree to ~1e-5.  For non-canonical links (probit, cloglog; nbinom2 with log)",
    "they do not: glmer's log-determinant term uses the PIRLS (Fisher scoring, expected-information)",
    "weights prior_w (dmu/deta)^2 / V(mu) at the mode, glmmTMB the observed Hessian (TMB's AD) -- the",
    "true Laplace approximation.  cbpp probit/cloglog differ by ~4e-3 relative (logLik by 0.04) and",
    "progeny probit by ~5e-3 (logLik by 0.34).  laplace_check in those cases maximises both versions",
    "written out in R and reproduces each package to ~1e-5 or better.  glmmTMB$polished is the glmmTMB",
    "fit re-optimised tightly on its own objective (it moves only progeny_probit, by 1.1e-4)."),
  variances_note = "variances are random-effect variances (not SDs), keyed by grouping factor as R names them")

## ---- 1. cbpp ----------------------------------------------------------------------------
cbpp_d <- lme4::cbpp
write.csv(data.frame(herd = cbpp_d$herd, incidence = cbpp_d$incidence, size = cbpp_d$size,
                     period = cbpp_d$period),
          file.path(out_dir, "glmm_cbpp.csv"), row.names = FALSE, quote = FALSE)
res$data <- list()
res$data$cbpp <- c(list(file = "glmm_cbpp.csv", source = "lme4::cbpp, unchanged (herd 1..15, period 1..4 as factors)"),
                   data_check(cbpp_d))
f_cbind <- "cbind(incidence, size - incidence) ~ period + (1 | herd)"
res$cbpp_logit <- glmm_case("cbpp_logit", f_cbind, cbpp_d, 'binomial(link = "logit")', "herd")
res$cbpp_logit_proportion <- glmm_case("cbpp_logit_proportion", "incidence/size ~ period + (1 | herd)",
                                       cbpp_d, 'binomial(link = "logit")', "herd", weights_text = "size")
res$cbpp_logit_proportion$note <- paste(
  "Same model as cbpp_logit written as proportion with weights = size.  Both packages treat",
  "weights = size on a proportion as the binomial size, so estimates and logLik equal",
  "cbpp_logit (logLik includes sum(log(choose(size, incidence))) =",
  format(sum(lchoose(cbpp_d$size, cbpp_d$incidence)), digits = 15), "in both forms).")
res$cbpp_logit_proportion$logLik_minus_cbind_form <- list(
  glmer = res$cbpp_logit_proportion$logLik - res$cbpp_logit$logLik,
  glmmTMB = res$cbpp_logit_proportion$glmmTMB$logLik - res$cbpp_logit$glmmTMB$logLik)
res$cbpp_logit$binomial_constant <- sum(lchoose(cbpp_d$size, cbpp_d$incidence))
res$cbpp_probit <- glmm_case("cbpp_probit", f_cbind, cbpp_d, 'binomial(link = "probit")', "herd")
res$cbpp_cloglog <- glmm_case("cbpp_cloglog", f_cbind, cbpp_d, 'binomial(link = "cloglog")', "herd")
cbpp_ld <- function(mu) dbinom(cbpp_d$incidence, cbpp_d$size, mu, log = TRUE)
for (cs in c("cbpp_logit", "cbpp_probit", "cbpp_cloglog"))
  res[[cs]]$laplace_check <- laplace_check(res[[cs]], as.formula(f_cbind), cbpp_d, cbpp_d$incidence / cbpp_d$size,
                                           cbpp_d$size, binomial(link = res[[cs]]$link), cbpp_ld)

## ---- 2. grouseticks ---------------------------------------------------------------------
gt <- lme4::grouseticks
gt$HEIGHT_c <- (gt$HEIGHT - mean(gt$HEIGHT)) / sd(gt$HEIGHT)
gt_out <- data.frame(INDEX = gt$INDEX, TICKS = gt$TICKS, BROOD = gt$BROOD, HEIGHT = gt$HEIGHT,
                     YEAR = gt$YEAR, LOCATION = gt$LOCATION, HEIGHT_c = gt$HEIGHT_c)
write.csv(gt_out, file.path(out_dir, "glmm_grouseticks.csv"), row.names = FALSE, quote = FALSE)
gt <- read.csv(file.path(out_dir, "glmm_grouseticks.csv"),     # fit exactly what the CSV holds
               colClasses = c(INDEX = "factor", BROOD = "factor", YEAR = "factor", LOCATION = "factor"))
stopifnot(max(abs(gt$HEIGHT_c - (gt$HEIGHT - mean(gt$HEIGHT)) / sd(gt$HEIGHT))) < 1e-13)
res$data$grouseticks <- c(list(file = "glmm_grouseticks.csv",
  source = "lme4::grouseticks; HEIGHT_c = (HEIGHT - mean(HEIGHT)) / sd(HEIGHT), written with 15 significant digits; the fits use the CSV as read back"),
  data_check(gt))
f_gt <- "TICKS ~ YEAR + HEIGHT_c + (1 | BROOD) + (1 | LOCATION)"
res$grouseticks_poisson <- glmm_case("grouseticks_poisson", f_gt, gt, 'poisson(link = "log")',
                                     c("BROOD", "LOCATION"))

cat("== grouseticks_nbinom2\n")
nb_call <- sprintf("glmmTMB(%s, data = dat, family = nbinom2(link = \"log\"))", f_gt)
nb <- run_text(nb_call, gt)
tnb <- summ_tmb(nb$value, nb$warnings, c("BROOD", "LOCATION"))
tnb$polished <- polish_tmb(nb$value)
nb_entry <- c(list(call = nb_call, family = "nbinom2", link = "log"), tnb,
              list(theta = sigma(nb$value),
                   theta_note = "glmmTMB nbinom2: Var(y) = mu + mu^2 / theta, theta = sigma(fit) (exp of the dispersion parameter betad)",
                   betad = unname(nb$value$fit$par[names(nb$value$fit$par) == "betad"])))
nbg_call <- sprintf("glmer.nb(%s, data = dat, nAGQ = 1, control = %s)", f_gt, CTRL_TEXT)
nbg <- run_text(nbg_call, gt)
if (inherits(nbg$value, "merMod")) {
  mg <- nbg$value
  nb_entry$glmer.nb <- list(call = nbg_call, info = paste("for information only, not a reference: glmer.nb estimates theta by an outer 1-D",
                              "optimisation, and for the negative binomial with log link (not canonical) glmer's",
                              "Laplace uses the Fisher (PIRLS) weights, glmmTMB the observed Hessian (see",
                              "laplace_note), so the two are different approximations and differ by several %"),
                            fixef = named_list(fixef(mg)), variances = variances_glmer(mg),
                            theta = getME(mg, "glmer.nb.theta"), logLik = as.numeric(logLik(mg)),
                            warnings = as.list(nbg$warnings))
  nb_entry$glmer.nb$max_rel_diff_to_glmmTMB <- max(
    rel_diff(unlist(tnb$fixef), unlist(nb_entry$glmer.nb$fixef[names(tnb$fixef)])),
    rel_diff(unlist(tnb$variances), unlist(nb_entry$glmer.nb$variances[names(tnb$variances)])),
    abs(nb_entry$theta - nb_entry$glmer.nb$theta) / nb_entry$theta)
}
cat(sprintf("   glmmTMB nbinom2 logLik %.8f theta %.6f conv %s\n", tnb$logLik, nb_entry$theta,
            tnb$convergence$converged))
res$grouseticks_nbinom2 <- nb_entry

## ---- 3. simulated binary progeny trial -------------------------------------------------------
set.seed(20180)
n_trial <- 4; n_block <- 6; n_mother <- 60; per_plot <- 3
surv_p <- c(0.60, 0.70, 0.80, 0.90)
tot_sd <- sqrt(1 + 0.1 + 0.15)
mu_t <- qnorm(surv_p) * tot_sd             # marginal survival 60/70/80/90 % on the liability scale
prog <- expand.grid(rep = seq_len(per_plot), Mother = seq_len(n_mother), Block = seq_len(n_block),
                    Trial = seq_len(n_trial))
prog <- prog[sort(sample(nrow(prog), 4000)), ]          # 4320 planted, 4000 assessed
b_eff <- matrix(rnorm(n_trial * n_block, 0, sqrt(0.1)), n_trial, n_block)
m_eff <- rnorm(n_mother, 0, sqrt(0.15))
liab <- mu_t[prog$Trial] + b_eff[cbind(prog$Trial, prog$Block)] + m_eff[prog$Mother] + rnorm(nrow(prog))
prog_out <- data.frame(Tree = seq_len(nrow(prog)),
                       Trial = sprintf("T%d", prog$Trial), Block = sprintf("B%d", prog$Block),
                       Mother = sprintf("M%02d", prog$Mother),
                       surv = as.integer(liab > 0), liability = round(liab, 6))
write.csv(prog_out, file.path(out_dir, "glmm_progeny.csv"), row.names = FALSE, quote = FALSE)
prog <- read.csv(file.path(out_dir, "glmm_progeny.csv"), stringsAsFactors = TRUE)
res$data$progeny <- c(list(file = "glmm_progeny.csv",
  source = paste("simulated, set.seed(20180): 4 trials x 6 blocks x 60 mothers x 3 trees = 4320,",
                 "4000 kept at random; liability = mu[Trial] + block (var 0.1) + mother (var 0.15)",
                 "+ N(0, 1); surv = liability > 0.  Block labels B1..B6 repeat within trials: use",
                 "Trial:Block.  liability (6 decimals) is the simulated latent value, not used by the fits."),
  truth = list(probit_intercepts = named_list(setNames(mu_t, sprintf("T%d", 1:4))),
               block_variance = 0.1, mother_variance = 0.15, residual = 1,
               marginal_survival = named_list(setNames(surv_p, sprintf("T%d", 1:4))),
               block_effects = b_eff, mother_effects = named_list(setNames(m_eff, sprintf("M%02d", 1:60)))),
  observed_survival = named_list(tapply(prog$surv, prog$Trial, mean))),
  data_check(prog))
f_prog <- "surv ~ Trial + (1 | Trial:Block) + (1 | Mother)"
res$progeny_probit <- glmm_case("progeny_probit", f_prog, prog, 'binomial(link = "probit")',
                                c("Mother", "Trial:Block"))
res$progeny_logit <- glmm_case("progeny_logit", f_prog, prog, 'binomial(link = "logit")',
                               c("Mother", "Trial:Block"))
prog_ld <- function(mu) dbinom(prog$surv, 1, mu, log = TRUE)
for (cs in c("progeny_probit", "progeny_logit"))
  res[[cs]]$laplace_check <- laplace_check(res[[cs]], as.formula(f_prog), prog, prog$surv, rep(1, nrow(prog)),
                                           binomial(link = res[[cs]]$link), prog_ld)

## ---- 4. simulated Poisson counts with an offset ------------------------------------------------
set.seed(4417)
cones <- expand.grid(rep = 1:2, Mother = 1:50, Block = 1:5, Trial = 1:4)
x <- round(rnorm(nrow(cones)), 4)                         # standardised stem diameter
exposure <- round(runif(nrow(cones), 5, 30), 2)           # days observed
bl <- matrix(rnorm(20, 0, sqrt(0.05)), 4, 5)
mo <- rnorm(50, 0, sqrt(0.2))
eta <- log(0.4) + 0.3 * x + mo[cones$Mother] + bl[cbind(cones$Trial, cones$Block)] + log(exposure)
cones_out <- data.frame(Tree = seq_len(nrow(cones)), Trial = sprintf("T%d", cones$Trial),
                        Block = sprintf("B%d", cones$Block), Mother = sprintf("M%02d", cones$Mother),
                        x = x, exposure = exposure, count = rpois(nrow(cones), exp(eta)))
write.csv(cones_out, file.path(out_dir, "glmm_cones.csv"), row.names = FALSE, quote = FALSE)
cones <- read.csv(file.path(out_dir, "glmm_cones.csv"), stringsAsFactors = TRUE)
res$data$cones <- c(list(file = "glmm_cones.csv",
  source = paste("simulated, set.seed(4417): 4 trials x 5 blocks x 50 mothers x 2 trees = 2000;",
                 "count ~ Poisson(exposure * exp(log(0.4) + 0.3 x + mother (var 0.2) + block (var 0.05)));",
                 "x ~ N(0, 1) (4 decimals), exposure ~ U(5, 30) days (2 decimals)"),
  truth = list(intercept = log(0.4), x = 0.3, mother_variance = 0.2, block_variance = 0.05)),
  data_check(cones))
res$cones_poisson_offset <- glmm_case("cones_poisson_offset",
  "count ~ x + offset(log(exposure)) + (1 | Mother) + (1 | Trial:Block)", cones,
  'poisson(link = "log")', c("Mother", "Trial:Block"))

## ---- 5. PQL (ASReml's) -----------------------------------------------------------------------
## REML of y on X and random terms Zlist with R = diag(1 / w) (residual fixed at 1),
## G = blockdiag(s2_k I).  AI-REML on s2 from start s2, to relative change < tol.
reml_fixed_resid <- function(y, w, X, Zlist, s2, tol = 1e-12, maxit = 200) {
  n <- length(y); p <- ncol(X); q <- vapply(Zlist, ncol, 1L); K <- length(Zlist)
  Z <- do.call(cbind, Zlist); T <- cbind(Matrix(X, sparse = TRUE), Z)
  idx <- split(p + seq_len(sum(q)), rep(seq_len(K), q)); names(idx) <- names(Zlist)
  WT <- Diagonal(x = w) %*% T
  TWT <- as.matrix(crossprod(T, WT)); TWy <- as.vector(crossprod(T, w * y))
  eval_at <- function(s2) {
    C <- TWT; d <- p + seq_len(sum(q)); gi <- rep(1 / s2, q)
    C[cbind(d, d)] <- C[cbind(d, d)] + gi
    Ci <- chol2inv(chol(C)); sol <- as.vector(Ci %*% TWy)
    e <- y - as.vector(T %*% sol); Py <- w * e
    ldC <- 2 * sum(log(diag(chol(C))))
    ll <- -0.5 * ((n - p) * log(2 * pi) - sum(log(w)) + sum(q * log(s2)) + ldC + sum(y * Py))
    list(C = C, Ci = Ci, sol = sol, e = e, Py = Py, ll = ll)
  }
  conv <- FALSE
  for (it in seq_len(maxit)) {
    ev <- eval_at(s2)
    u <- lapply(idx, function(i) ev$sol[i])
    score <- vapply(seq_len(K), function(k)
      -0.5 * (q[k] / s2[k] - sum(diag(ev$Ci)[idx[[k]]]) / s2[k]^2 - sum(u[[k]]^2) / s2[k]^2), 0)
    Fm <- sapply(seq_len(K), function(k) as.vector(Zlist[[k]] %*% u[[k]]) / s2[k])   # n x K
    WF <- w * Fm
    PF <- WF - w * as.matrix(T %*% (ev$Ci %*% as.matrix(crossprod(T, WF))))
    AI <- 0.5 * crossprod(Fm, PF)
    step <- as.vector(solve(AI, score)); lam <- 1
    while (any(s2 + lam * step <= 0)) lam <- lam / 2
    s2_new <- s2 + lam * step
    if (max(abs(s2_new - s2) / s2) < tol) { s2 <- s2_new; conv <- TRUE; break }
    s2 <- s2_new
  }
  ev <- eval_at(s2)
  list(s2 = s2, beta = ev$sol[seq_len(p)], u = lapply(idx, function(i) ev$sol[i]),
       converged = conv,
       eta = y - ev$e, logLik = ev$ll, iterations = it,
       pev = lapply(idx, function(i) diag(ev$Ci)[i]),
       fixef_se = sqrt(diag(ev$Ci)[seq_len(p)]))
}

working <- function(eta, y, prior_w, fam) {
  mu <- fam$linkinv(eta); dmu <- fam$mu.eta(eta)
  list(z = eta + (y - mu) / dmu, w = prior_w * dmu^2 / fam$variance(mu))
}

pql_case <- function(name, fixed_formula, random_text, data, y, prior_w, fam, glm_call_text,
                     tol = 1e-8, maxit = 100) {
  cat(sprintf("== %s\n", name))
  t0 <- Sys.time()
  ds <- design(as.formula(paste(deparse(fixed_formula), "+", random_text)), data)
  g0 <- run_text(glm_call_text, data)$value
  eta <- as.vector(ds$X %*% coef(g0))          # glm fit: fixed part only
  s2 <- rep(0.1, length(ds$Zlist)); hist <- list()
  converged <- FALSE
  for (it in seq_len(maxit)) {
    wk <- working(eta, y, prior_w, fam)
    fit <- reml_fixed_resid(wk$z, wk$w, ds$X, ds$Zlist, s2)
    change <- max(abs(fit$s2 - s2) / s2)
    stopifnot(fit$converged)
    hist[[it]] <- list(variances = fit$s2, max_rel_change = change, reml_iterations = fit$iterations)
    s2 <- fit$s2; eta <- fit$eta
    if (it > 1 && change < tol) { converged <- TRUE; break }
  }
  ## The final working variate is the one the last REML fit used (its estimates are the answer).
  time_ai <- as.numeric(Sys.time() - t0, units = "secs")
  vnames <- names(ds$Zlist)
  out <- list(method = "PQL (ASReml-style): REML on the working variate, residual fixed at 1",
    family = fam$family, link = fam$link, nobs = length(y),
    fixed = paste(deparse(fixed_formula), collapse = ""), random = random_text,
    start = glm_call_text,
    convergence_rule = "max_k |s2_k(new) - s2_k(old)| / s2_k(old) < 1e-8 (iteration 1 starts from the glm fit; the first variance start is 0.1)",
    converged = converged, iterations = it,
    fixef = named_list(setNames(fit$beta, colnames(ds$X))),
    fixef_se = named_list(setNames(fit$fixef_se, colnames(ds$X))),
    variances = named_list(setNames(fit$s2, vnames)),
    logLik_REML_working = fit$logLik,
    logLik_REML_working_note = paste("REML log-likelihood of the final working LMM (z on X, Z with R = diag(1/w)):",
      "-1/2 [(n - p) log(2 pi) - sum(log w) + sum_k q_k log s2_k + log|C| + z'Pz]; this is the",
      "lme4/glmmTMB REML convention (includes the (n - p) log(2 pi) constant and the weights' log det)"),
    blup = lapply(setNames(vnames, vnames), function(g)
      named_list(setNames(fit$u[[g]], ds$levels[[g]]))),
    pev = lapply(setNames(vnames, vnames), function(g)
      named_list(setNames(fit$pev[[g]], ds$levels[[g]]))),
    history = lapply(hist, function(h) list(variances = named_list(setNames(h$variances, vnames)),
                                             max_rel_change = h$max_rel_change,
                                             reml_iterations = h$reml_iterations)),
    timing_seconds = time_ai)

  ## glmmTMB on the final working variate (same z, w as the last AI-REML fit).
  wd <- data; wd$z_work <- wk$z; wd$w_work <- wk$w
  rhs <- sub("^[^~]*~", "", paste(deparse(fixed_formula), collapse = ""))
  tmb_text <- sprintf(paste("glmmTMB(z_work ~%s + %s, data = dat, family = gaussian, weights = w_work,",
                            "REML = TRUE, start = list(betad = 0), map = list(betad = factor(NA)))"),
                      rhs, random_text)
  ft <- run_text(tmb_text, wd); t <- ft$value
  vt <- variances_tmb(t)
  out$glmmTMB_final_working_lmm <- list(call = tmb_text,
    fixef = named_list(fixef(t)$cond), variances = vt,
    sigma = sigma(t),
    logLik_REML = as.numeric(logLik(t)),
    logLik_REML_minus_AI_REML = as.numeric(logLik(t)) - fit$logLik,
    weights_multiply_loglik_constant = sum(-(wk$w - 1) / 2 * log(2 * pi) - 0.5 * log(wk$w)),
    logLik_note = paste("glmmTMB 1.1.5 multiplies each Gaussian log-density by its weight,",
      "sum w_i log dnorm(z_i; mu_i, 1), instead of using dnorm(z_i; mu_i, 1/sqrt(w_i)); with the residual",
      "fixed the estimates are the same and the logLik differs by the constant",
      "sum(-(w - 1)/2 log(2 pi) - log(w)/2) (weights_multiply_loglik_constant), which should equal",
      "logLik_REML_minus_AI_REML"),
    max_rel_diff_to_AI_REML = max(rel_diff(fit$beta, fixef(t)$cond[colnames(ds$X)]),
                                  rel_diff(fit$s2, unlist(vt[vnames]))),
    convergence = list(code = t$fit$convergence, message = t$fit$message, warnings = as.list(ft$warnings)))

  ## Second route: the whole PQL iteration with glmmTMB as the REML solver.
  t1 <- Sys.time()
  eta2 <- as.vector(ds$X %*% coef(g0)); s2b <- NULL; conv2 <- FALSE; w2 <- character()
  for (it2 in seq_len(maxit)) {
    wk2 <- working(eta2, y, prior_w, fam)
    wd$z_work <- wk2$z; wd$w_work <- wk2$w
    f2 <- run_text(tmb_text, wd); w2 <- c(w2, f2$warnings)
    s2n <- unlist(variances_tmb(f2$value)[vnames])
    eta2 <- as.vector(predict(f2$value, type = "link"))
    ch <- if (is.null(s2b)) Inf else max(abs(s2n - s2b) / s2b)
    s2b <- s2n
    if (ch < tol) { conv2 <- TRUE; break }
  }
  out$glmmTMB_route <- list(
    description = "the same PQL iteration with glmmTMB (REML, dispersion mapped to 1) as the working-LMM solver, cold start each time",
    converged = conv2, iterations = it2, last_max_rel_change = ch,
    fixef = named_list(fixef(f2$value)$cond), variances = named_list(s2n),
    logLik_REML_working = as.numeric(logLik(f2$value)),
    max_rel_diff_to_AI_REML_route = max(rel_diff(fit$beta, fixef(f2$value)$cond[colnames(ds$X)]),
                                        rel_diff(fit$s2, s2n)),
    warnings = as.list(unique(w2)),
    timing_seconds = as.numeric(Sys.time() - t1, units = "secs"))
  cat(sprintf("   PQL AI-REML: %d iterations, variances %s, logLik_REML_working %.8f\n", it,
              paste(sprintf("%.8f", fit$s2), collapse = " "), fit$logLik))
  cat(sprintf("   glmmTMB on final z: max rel diff %.2e, logLik diff %.2e; glmmTMB route: %d its, max rel diff %.2e\n",
              out$glmmTMB_final_working_lmm$max_rel_diff_to_AI_REML,
              out$glmmTMB_final_working_lmm$logLik_REML_minus_AI_REML, it2,
              out$glmmTMB_route$max_rel_diff_to_AI_REML_route))
  out
}

res$pql_progeny_probit <- pql_case("pql_progeny_probit", surv ~ Trial, "(1 | Trial:Block) + (1 | Mother)",
  prog, prog$surv, rep(1, nrow(prog)), binomial(link = "probit"),
  'glm(surv ~ Trial, data = dat, family = binomial(link = "probit"))')
res$pql_cbpp_logit <- pql_case("pql_cbpp_logit", cbind(incidence, size - incidence) ~ period, "(1 | herd)",
  cbpp_d, cbpp_d$incidence / cbpp_d$size, cbpp_d$size, binomial(link = "logit"),
  'glm(cbind(incidence, size - incidence) ~ period, data = dat, family = binomial(link = "logit"))')
res$pql_cbpp_logit$y_note <- "y = incidence / size, prior weights = size: w = size * (dmu/deta)^2 / (mu (1 - mu))"

## For information only: MASS::glmmPQL (ML working fits, dispersion estimated -- not ASReml's PQL).
gp_entry <- function(text, data) {
  r <- run_text(text, data); g <- r$value
  vc <- nlme::VarCorr(g)
  list(call = text,
       info = "MASS::glmmPQL for information only: lme() ML fits of the working LMM with the residual variance (dispersion) estimated, so NOT the reference PQL",
       fixef = named_list(nlme::fixef(g)),
       variances_and_residual = as.list(setNames(as.numeric(vc[, "Variance"]), rownames(vc))),
       dispersion = g$sigma^2, warnings = as.list(r$warnings))
}
gp_c <- gp_entry("glmmPQL(cbind(incidence, size - incidence) ~ period, random = ~ 1 | herd, family = binomial, data = dat, verbose = FALSE)", cbpp_d)
res$pql_cbpp_logit$MASS_glmmPQL <- gp_c

res$timing_seconds_total <- as.numeric(Sys.time() - t_start, units = "secs")
out_file <- file.path(out_dir, "glmm.json")
writeLines(toJSON(res, auto_unbox = TRUE, digits = NA, pretty = TRUE, na = "null"), out_file)
cat(sprintf("wrote %s (%.1f s)\n", out_file, res$timing_seconds_total))
