## ---------------------------------------------------------------------------
## inference.R -- reference numbers from R for fixed-effect tests (Wald F with
## Satterthwaite and Kenward-Roger denominator df) and predictions (emmeans)
## in REML linear mixed models.
##
## Models (REML, lmerTest::lmer, bobyqa rhobeg 2e-4, rhoend 2e-11, maxfun 1e5):
##   splitplot : tests/refdata/agridat_stroup.splitplot.csv
##               y ~ a * b + (1 | rep) + (1 | rep:a)
##               (a whole-plot factor, 3 levels; b subplot factor, 2 levels;
##                rep = block, 4 levels; balanced, 24 rows)
##   alpha     : tests/refdata/agridat_john.alpha.csv
##               yield ~ rep + gen + (1 | rep:block)
##               (alpha design: 3 reps x 6 incomplete blocks of 4, 24 gens)
##   multisite : tests/refdata/agridat_hildebrand.systems.csv
##               yield ~ village * system + (1 | village:farm)
##               (2 villages = sites, 4 systems = treatments, farm = block
##                within village; 8 farms in V1, 6 in V2: unequal replication)
##   regression: tests/reference/inference_regression.csv (simulated here,
##               set.seed(20261207); sleepstudy-like, unbalanced)
##               y ~ x + (1 + x | g)
## All grouping / treatment columns are made factors with factor() (levels in
## sorted order, R's default, C locale for these ASCII labels); x and the
## responses are numeric.
##
## For each model: logLik (REML), variance components, fixef, vcov, X column
## names; GLS-based incremental (ASReml "F.inc") and conditional ("F.con")
## Wald F tests fed to lmerTest::contestMD with Satterthwaite and
## Kenward-Roger ddf; lmerTest anova type 1 and 2; pbkrtest vcovAdj and
## KRmodcomp for the last term's incremental L; lmerTest Satterthwaite
## internals (vcov_varpar, theta, sigma); emmeans (KR and Satterthwaite).
## See "notes" in the JSON for all conventions.
##
## Rerun (from the repository root; well under a minute):
##   Rscript --vanilla tests/reference/inference.R [tests/reference/inference.json]
## ---------------------------------------------------------------------------

suppressPackageStartupMessages({
  library(lme4)
  library(lmerTest)
  library(pbkrtest)
  library(emmeans)
  library(jsonlite)
})

t_start <- proc.time()[["elapsed"]]
args <- commandArgs(trailingOnly = TRUE)
out_file <- if (length(args) >= 1) args[1] else "tests/reference/inference.json"

ctrl <- lmerControl(optimizer = "bobyqa",
                    optCtrl = list(rhobeg = 2e-4, rhoend = 2e-11, maxfun = 1e5),
                    check.conv.grad = "ignore", check.conv.singular = "ignore",
                    check.conv.hess = "ignore")

notes <- character(0)
add_note <- function(...) notes <<- c(notes, paste0(...))

## ---- data ------------------------------------------------------------------
sim_file <- "tests/reference/inference_regression.csv"
simulate_regression <- function() {
  set.seed(20261207)
  ng <- 18; nx <- 10
  d <- expand.grid(x = 0:(nx - 1), g = sprintf("S%02d", 1:ng),
                   stringsAsFactors = FALSE)[, c("g", "x")]
  u <- matrix(rnorm(2 * ng), ng, 2) %*% chol(matrix(c(600, 20, 20, 40), 2))
  gi <- match(d$g, sprintf("S%02d", 1:ng))
  d$y <- round(250 + 10 * d$x + u[gi, 1] + u[gi, 2] * d$x + rnorm(nrow(d), 0, 25), 3)
  keep <- runif(nrow(d)) > 0.2          # drop about 20% of rows: unbalanced
  d <- d[keep, ]
  rownames(d) <- NULL
  d
}
dreg <- simulate_regression()
write.csv(dreg, sim_file, row.names = FALSE)

read_data <- function(name) {
  switch(name,
    splitplot = {
      d <- read.csv("tests/refdata/agridat_stroup.splitplot.csv")
      d$rep <- factor(d$rep); d$a <- factor(d$a); d$b <- factor(d$b); d },
    alpha = {
      d <- read.csv("tests/refdata/agridat_john.alpha.csv")
      d$rep <- factor(d$rep); d$block <- factor(d$block); d$gen <- factor(d$gen); d },
    multisite = {
      d <- read.csv("tests/refdata/agridat_hildebrand.systems.csv")
      d$village <- factor(d$village); d$farm <- factor(d$farm)
      d$system <- factor(d$system); d },
    regression = {
      d <- read.csv(sim_file)
      d$g <- factor(d$g); d })
}

specs <- list(
  splitplot = list(file = "tests/refdata/agridat_stroup.splitplot.csv",
                   formula = y ~ a * b + (1 | rep) + (1 | rep:a),
                   factors = c("rep", "a", "b"),
                   emm = list(a = ~ a, b = ~ b, "a:b" = ~ a:b)),
  alpha = list(file = "tests/refdata/agridat_john.alpha.csv",
               formula = yield ~ rep + gen + (1 | rep:block),
               factors = c("rep", "block", "gen"),
               emm = list(gen = ~ gen)),
  multisite = list(file = "tests/refdata/agridat_hildebrand.systems.csv",
                   formula = yield ~ village * system + (1 | village:farm),
                   factors = c("village", "farm", "system"),
                   emm = list(system = ~ system, village = ~ village,
                              "village:system" = ~ village:system)),
  regression = list(file = sim_file,
                    formula = y ~ x + (1 + x | g),
                    factors = c("g"),
                    emm = list())
)

## ---- helpers ---------------------------------------------------------------
rows_of <- function(M) {
  M <- as.matrix(M)
  lapply(seq_len(nrow(M)), function(i) unname(M[i, ]))
}

full_row_rank <- function(L, tol = 1e-10) {
  q <- qr(t(L), tol = tol)
  if (q$rank == nrow(L)) return(list(L = L, reduced = FALSE))
  ## keep a linearly independent subset of rows (pivoted QR of t(L))
  list(L = L[sort(q$pivot[seq_len(q$rank)]), , drop = FALSE], reduced = TRUE)
}

contest_row <- function(m, L, ddf) {
  r <- tryCatch(contestMD(m, L, ddf = ddf), error = function(e) e)
  if (inherits(r, "error")) return(list(error = conditionMessage(r)))
  list(F = r[["F value"]], NumDF = r[["NumDF"]], DenDF = r[["DenDF"]],
       p_value = r[["Pr(>F)"]], SumSq = r[["Sum Sq"]], MeanSq = r[["Mean Sq"]])
}

anova_tab <- function(m, type, ddf) {
  a <- tryCatch(anova(m, type = type, ddf = ddf), error = function(e) e)
  if (inherits(a, "error")) return(list(error = conditionMessage(a)))
  setNames(lapply(rownames(a), function(tn)
    list(F = a[tn, "F value"], NumDF = a[tn, "NumDF"], DenDF = a[tn, "DenDF"],
         p_value = a[tn, "Pr(>F)"], SumSq = a[tn, "Sum Sq"],
         MeanSq = a[tn, "Mean Sq"])), rownames(a))
}

## ---- per-model analysis ----------------------------------------------------
analyse <- function(name, spec) {
  d <- read_data(name)
  m <- lmerTest::lmer(spec$formula, data = d, REML = TRUE, control = ctrl)
  X <- getME(m, "X")
  xnames <- colnames(X)
  p <- ncol(X)
  assign <- attr(X, "assign")
  tt <- terms(m, fixed.only = TRUE)
  tlabels <- attr(tt, "term.labels")
  fac <- attr(tt, "factors")
  ## term 0 = intercept
  term_names <- c("(Intercept)", tlabels)
  if (is.null(assign) || length(assign) != p)
    stop("no assign attribute on X")
  if (length(setdiff(assign, 0:length(tlabels))) > 0) stop("bad assign")
  Phi <- as.matrix(vcov(m))
  Info <- solve(Phi)
  Info <- (Info + t(Info)) / 2
  ## factor sets of terms
  fset <- c(list(character(0)),
            lapply(tlabels, function(tn) rownames(fac)[fac[, tn] > 0]))
  names(fset) <- term_names

  schur_L <- function(Mcols, Jcols, Ccols) {
    K <- c(Jcols, Ccols)
    S <- Info[K, K, drop = FALSE]
    if (length(Mcols) > 0)
      S <- S - Info[K, Mcols, drop = FALSE] %*%
        solve(Info[Mcols, Mcols, drop = FALSE], Info[Mcols, K, drop = FALSE])
    L <- matrix(0, length(Jcols), p, dimnames = list(NULL, xnames))
    L[, K] <- S[seq_along(Jcols), , drop = FALSE]
    L
  }

  tests <- list(incremental = list(), conditional = list())
  Llast_inc <- NULL
  for (j in seq_along(term_names) - 1) {
    tn <- term_names[j + 1]
    J <- which(assign == j)
    ## incremental
    P <- which(assign < j); A <- which(assign > j)
    L <- schur_L(P, J, A)
    fr <- full_row_rank(L)
    tests$incremental[[tn]] <- list(
      conditioning_terms = term_names[seq_len(j)],
      L = rows_of(fr$L), L_rank_reduced = fr$reduced,
      Satterthwaite = contest_row(m, fr$L, "Satterthwaite"),
      KenwardRoger = contest_row(m, fr$L, "Kenward-Roger"))
    if (j == length(term_names) - 1) Llast_inc <- fr$L
    ## conditional (marginality)
    contains <- vapply(seq_along(term_names), function(k)
      (k != j + 1) && all(fset[[j + 1]] %in% fset[[k]]), logical(1))
    Cterms <- which(contains) - 1
    Mterms <- setdiff(seq_along(term_names) - 1, c(j, Cterms))
    Mc <- which(assign %in% Mterms); Cc <- which(assign %in% Cterms)
    L <- schur_L(Mc, J, Cc)
    fr <- full_row_rank(L)
    tests$conditional[[tn]] <- list(
      conditioning_terms = term_names[Mterms + 1],
      containing_terms = term_names[Cterms + 1],
      L = rows_of(fr$L), L_rank_reduced = fr$reduced,
      Satterthwaite = contest_row(m, fr$L, "Satterthwaite"),
      KenwardRoger = contest_row(m, fr$L, "Kenward-Roger"))
  }

  ## lmerTest anova tables
  lt_anova <- list()
  for (ty in 1:2) for (dd in c("Satterthwaite", "Kenward-Roger"))
    lt_anova[[paste0("type", ty, "_", dd)]] <- anova_tab(m, ty, dd)

  ## pbkrtest
  kr <- tryCatch({
    PhiA <- as.matrix(vcovAdj(m))
    km <- KRmodcomp(m, Llast_inc)
    st <- km$stats
    cm <- contestMD(m, Llast_inc, ddf = "Kenward-Roger")
    ## Wald F with Phi_A, unscaled
    b <- fixef(m)
    Lb <- Llast_inc %*% b
    Fw <- drop(t(Lb) %*% solve(Llast_inc %*% PhiA %*% t(Llast_inc), Lb)) / nrow(Llast_inc)
    list(vcovAdj = rows_of(PhiA),
         KRmodcomp_last_term_incremental = list(
           term = tail(term_names, 1),
           Fstat = st$Fstat, ndf = st$ndf, ddf = st$ddf, F.scaling = st$F.scaling,
           p.value = st$p.value, FstatU = st$FstatU),
         contestMD_KR_F = cm[["F value"]],
         Wald_F_with_vcovAdj_unscaled = Fw,
         contestMD_F_over_KRmodcomp_Fstat = cm[["F value"]] / st$Fstat,
         contestMD_F_times_F.scaling_minus_Fstat = cm[["F value"]] * st$F.scaling - st$Fstat,
         contestMD_DenDF_minus_KR_ddf = cm[["DenDF"]] - st$ddf,
         contestMD_p = cm[["Pr(>F)"]],
         contestMD_p_minus_KRmodcomp_p = cm[["Pr(>F)"]] - st$p.value)
  }, error = function(e) list(error = conditionMessage(e)))

  ## Satterthwaite internals
  satt <- tryCatch({
    cm <- contestMD(m, Llast_inc, ddf = "Satterthwaite")
    vv <- m@vcov_varpar
    ## replicate lmerTest's multi-df Satterthwaite for this L
    L <- Llast_inc
    VL <- L %*% as.matrix(m@vcov_beta) %*% t(L)
    eg <- eigen(VL)
    PtL <- crossprod(eg$vectors, L)
    nu <- vapply(seq_len(nrow(L)), function(k) {
      g <- vapply(m@Jac_list, function(Jm) drop(PtL[k, ] %*% Jm %*% PtL[k, ]), numeric(1))
      2 * eg$values[k]^2 / drop(g %*% vv %*% g) }, numeric(1))
    E <- sum(nu / (nu - 2))
    list(term = tail(term_names, 1),
         contestMD = list(F = cm[["F value"]], NumDF = cm[["NumDF"]],
                          DenDF = cm[["DenDF"]], p_value = cm[["Pr(>F)"]]),
         vcov_varpar = rows_of(vv),
         eigenvalues_L_Phi_Lt = eg$values, nu_m = nu,
         ddf_from_nu = if (length(nu) == 1) nu else if (any(nu <= 2)) 2 else 2 * E / (E - length(nu)),
         Jac_list = lapply(m@Jac_list, rows_of),
         varpar_names = c(paste0("theta:", names(getME(m, "theta"))), "sigma"),
         theta = unname(getME(m, "theta")),
         theta_names = names(getME(m, "theta")),
         sigma = sigma(m),
         parametrisation = paste(
           "lmerTest's varpar = c(theta, sigma): theta = lme4 relative Cholesky",
           "factor entries (random-effect SD / sigma for scalar terms; lower",
           "triangle of Lambda column-wise for vector terms), sigma = residual SD",
           "(not variance). vcov_varpar = 2 * solve(Hessian of the REML deviance",
           "-2 logLik w.r.t. varpar) (numerical Hessian)."),
         vcov_beta_check_maxabs = max(abs(as.matrix(m@vcov_beta) - Phi)))
  }, error = function(e) list(error = conditionMessage(e)))

  ## emmeans
  emm <- list()
  for (en in names(spec$emm)) {
    for (dd in c("kenward-roger", "satterthwaite")) {
      key <- paste0(en, "_", dd)
      emm[[key]] <- tryCatch({
        e <- emmeans(m, spec$emm[[en]], lmer.df = dd)
        es <- as.data.frame(summary(e, infer = c(FALSE, FALSE)))
        pr <- as.data.frame(summary(pairs(e, adjust = "none"), infer = c(FALSE, TRUE)))
        lev_cols <- setdiff(names(es), c("emmean", "SE", "df", "lower.CL", "upper.CL"))
        list(levels = lapply(lev_cols, function(cn) as.character(es[[cn]])),
             level_columns = lev_cols,
             emmean = es$emmean, SE = es$SE, df = es$df,
             pairs = list(contrast = as.character(pr$contrast),
                          estimate = pr$estimate, SE = pr$SE, df = pr$df,
                          t.ratio = pr$t.ratio, p.value = pr$p.value))
      }, error = function(e) list(error = conditionMessage(e)))
    }
  }

  vc <- as.data.frame(VarCorr(m))
  vcn <- ifelse(is.na(vc$var1), vc$grp,
                ifelse(is.na(vc$var2), paste0(vc$grp, ":", vc$var1),
                       paste0(vc$grp, ":", vc$var1, ",", vc$var2)))
  varcomp <- setNames(as.list(vc$vcov), vcn)
  ll <- logLik(m, REML = TRUE)

  list(file = spec$file,
       formula = paste(deparse(spec$formula), collapse = " "),
       factor_columns = spec$factors,
       factor_levels = setNames(lapply(spec$factors, function(f) levels(d[[f]])),
                                spec$factors),
       nobs = nobs(m), sum_response = sum(model.response(model.frame(m))),
       logLik_REML = as.numeric(ll), logLik_df = attr(ll, "df"),
       REMLcrit = as.numeric(REMLcrit(m)),
       varcomp = varcomp,
       varcomp_note = paste("variances (and covariances: 'grp:var1,var2');",
                            "'Residual' = sigma^2"),
       sdcor = setNames(as.list(vc$sdcor), vcn),
       theta = unname(getME(m, "theta")), theta_names = names(getME(m, "theta")),
       sigma = sigma(m),
       X_colnames = xnames, X_assign = assign, term_names = term_names,
       fixef = unname(fixef(m)), vcov = rows_of(Phi),
       converged_messages = m@optinfo$conv$lme4$messages,
       tests = tests, lmerTest_anova = lt_anova,
       pbkrtest = kr, satterthwaite_details = satt, emmeans = emm)
}

models <- list()
for (nm in names(specs)) {
  models[[nm]] <- tryCatch(analyse(nm, specs[[nm]]), error = function(e) {
    add_note("model ", nm, " FAILED: ", conditionMessage(e))
    list(error = conditionMessage(e))
  })
}

## ---- comparisons: GLS tests vs lmerTest anova (OLS-based contrasts) --------
cmp <- list()
for (nm in names(models)) {
  mo <- models[[nm]]
  if (!is.null(mo$error)) next
  out <- list()
  for (ty in 1:2) {
    gl <- if (ty == 1) mo$tests$incremental else mo$tests$conditional
    for (dd in c("Satterthwaite", "Kenward-Roger")) {
      an <- mo$lmerTest_anova[[paste0("type", ty, "_", dd)]]
      key <- if (dd == "Satterthwaite") "Satterthwaite" else "KenwardRoger"
      diffs <- lapply(names(an), function(tn) {
        g <- gl[[tn]][[key]]
        list(F_reldiff = abs(g$F - an[[tn]]$F) / abs(g$F),
             DenDF_reldiff = abs(g$DenDF - an[[tn]]$DenDF) / g$DenDF,
             lmerTest_F = an[[tn]]$F, GLS_F = g$F,
             lmerTest_DenDF = an[[tn]]$DenDF, GLS_DenDF = g$DenDF)
      })
      out[[paste0("type", ty, "_vs_", if (ty == 1) "incremental" else "conditional",
                  "_", dd)]] <- setNames(diffs, names(an))
    }
  }
  cmp[[nm]] <- out
}

add_note("logLik convention: logLik(m, REML = TRUE) from lme4, = -0.5 [ (n - p) log(2 pi) + log|V| + log|X'V^-1 X| + y'P y ] (no +log|X'X| term, unlike nlme which adds 0.5 log|X'X|); REMLcrit = -2 logLik.")
add_note("Fits: lmerTest::lmer, REML, optimizer bobyqa with rhobeg = 2e-4, rhoend = 2e-11, maxfun = 1e5; lme4 convergence checks (gradient, singular, Hessian) switched off.")
add_note("Data: grouping and treatment columns made factors with factor() on the CSV strings (levels sorted, see factor_levels); default treatment contrasts (contr.treatment), so X has an intercept and dummy columns for levels 2..k; X_colnames and X_assign (term index, 0 = intercept) give the column-to-term map.")
add_note("L matrices (Phi = vcov(m), I = solve(Phi) = X'V^-1X at the REML estimates, symmetrised). Incremental (ASReml F.inc): for term j in formula order (intercept first), P = columns of terms before j, J = columns of j, A = columns after j, S = I[c(J,A),c(J,A)] - I[c(J,A),P] solve(I[P,P]) I[P,c(J,A)], L_j = [0_P, S_JJ, S_JA] (the rows of S belonging to J). Conditional (ASReml F.con, marginality): C_j = terms whose factor set contains j's factor set (j excluded; the intercept has the empty set so every term contains it), M_j = all other terms (intercept included), L_j = [0_M, S_JJ, S_JC] with S the Schur complement of I after eliminating M_j's columns. Each L is checked for full row rank with qr(t(L), tol 1e-10) and would be reduced to a pivoted independent row subset ('L_rank_reduced'); in this run no L needed reduction (all flags false: S_JJ is a principal block of a positive definite Schur complement, so always full rank when X has full column rank). L rows are stored in the 'L' field (columns in X_colnames order).")
add_note("Each L is passed to lmerTest::contestMD(m, L, ddf = 'Satterthwaite') and ddf = 'Kenward-Roger'; F, NumDF, DenDF, p_value (also SumSq, MeanSq) recorded. The Wald F = (L b)'(L Phi L')^-1 (L b) / q is invariant to the row basis of L (any nonsingular T: L -> T L), and so is the KR ddf, BUT lmerTest's multi-df Satterthwaite DenDF is NOT basis invariant: contestMD eigen-decomposes L Phi L' = P diag(d) P', uses the contrasts P'L (rows k = 1..q), nu_k = 2 d_k^2 / (g_k' W g_k) with g_k[i] = (P'L)_k Jac_i (P'L)_k' (Jac_i = dPhi/dvarpar_i, m@Jac_list, numerical) and W = m@vcov_varpar, then DenDF = 2E/(E - q), E = sum nu_k/(nu_k - 2) (DenDF = 2 if any nu_k <= 2; mean(nu) if all nu equal within 1e-8; nu itself if q = 1). A different basis of the same hypothesis gives other P'L and another DenDF. So to reproduce these DenDF use exactly the stored L rows (S_JJ, S_JA / S_JC unscaled). Example: alpha, term gen (last term): lmerTest's type 1 anova tests the same hypothesis with its own L and gets the same F (rel. diff ~1e-15) but DenDF 34.902 vs 34.736 with the GLS L; KR ddf agree (comparisons$alpha).")
add_note("lmerTest_anova: anova(m, type = 1 / 2, ddf = ...) as lmerTest computes it. lmerTest builds its type 1 / type 2 contrasts from X alone (OLS-type: Doolittle decomposition of X'X for type 1, containment on X'X for type 2), not from X'V^-1X, so in general they test other hypotheses than the GLS incremental / conditional tests; they agree when the design is balanced/orthogonal. 'comparisons' lists, per term, relative differences in F and DenDF. Here: splitplot and multisite (balanced within site) agree to ~1e-15 in F and DenDF for both types and both ddf; regression has a single term (agrees trivially); alpha: rep and gen F agree (rep is orthogonal to blocks-within-rep and gen is the last term / the whole gen space), gen's Satterthwaite DenDF differs through the basis effect described above, KR agrees.")
add_note("Kenward-Roger, contestMD vs pbkrtest (checked, fields under models$<m>$pbkrtest): the brief expected contestMD(ddf = 'Kenward-Roger') to report the unscaled F; that is NOT what lmerTest 3.1.3 does. contestMD calls pbkrtest::KRmodcomp(m, L) and reports F = F.scaling * FstatU = KRmodcomp's Fstat (the SCALED statistic), where FstatU = (L b)'(L Phi_A L')^-1 (L b)/q with Phi_A = vcovAdj(m) (field Wald_F_with_vcovAdj_unscaled reproduces FstatU), NumDF = ndf and DenDF = KRmodcomp's ddf, p = P(F(ndf, ddf) > Fstat) = KRmodcomp p.value. Evidence: alpha, gen: contestMD F = Fstat = 5.36277952556207, FstatU = 5.3602374295155, F.scaling = 1.00047425064281 (contestMD_F_over_KRmodcomp_Fstat = 1, contestMD_F_times_F.scaling_minus_Fstat = 0.00254 = F.scaling*Fstat - Fstat); DenDF identical. In the balanced models and for 1-df tests F.scaling = 1 so the distinction vanishes. KR numbers in tests.*.KenwardRoger are therefore scaled F with KR ddf.")
add_note("Satterthwaite details (satterthwaite_details, last term's incremental L): lmerTest stores m@vcov_varpar = 2 * (pseudo)inverse of the numDeriv Hessian of the REML deviance (-2 logLik, not profiled: a function of theta and sigma) w.r.t. varpar = c(theta, sigma), theta = lme4's relative Cholesky parameters in getME(m, 'theta') order (names given; for (1 + x | g) lower triangle column-wise: g.(Intercept), g.x.(Intercept), g.x), sigma = residual SD (not variance); m@Jac_list = numDeriv Jacobian of vcov(beta) w.r.t. varpar (one p x p matrix per varpar, stored). eigenvalues_L_Phi_Lt, nu_m and ddf_from_nu recompute contestMD's DenDF from them. A Python implementation in another parametrisation (e.g. variances, or AI-matrix based) gives the same ddf in exact arithmetic (the Satterthwaite ddf is invariant to a smooth reparametrisation of the variance parameters), up to lmerTest's numerical-derivative error (~1e-6 relative or so).")
add_note("emmeans: emmeans(m, ~ A, lmer.df = 'kenward-roger' / 'satterthwaite'); estimates are predictions at the reference grid averaged with EQUAL weights over the levels of the other fixed factors (not weighted by cell counts); in the alpha model gen means are averaged over rep equally. pairs(..., adjust = 'none'): estimate, SE, df, t.ratio, p.value. KR SEs in emmeans use the KR-adjusted covariance Phi_A (vcovAdj), Satterthwaite SEs use vcov(m). Contrast labels are emmeans' ('a1 - a2', or 'a1 b1 - a2 b1' for cell means). Not done for the regression model.")
add_note("splitplot: Stroup split plot (agridat stroup.splitplot): rep r1..r4 blocks, whole-plot factor a (a1..a3), subplot factor b (b1, b2), 24 rows, fully balanced. agridat_durban.splitplot.csv (gen x fung, 560 rows) not used.")
add_note("multisite: Hildebrand farming-systems trial (agridat hildebrand.systems, 56 rows): 2 villages (sites, V1 with 8 farms F01-F08, V2 with 6 farms F09-F14), 4 systems (CCA, CCAF, LM, LMF) each once per farm; farm = complete block within village (farm labels are unique across villages, so (1|village:farm) = (1|farm)). Replication is unequal between sites (8 vs 6 per treatment) but balanced within site, so site and site:treatment are orthogonal to farm-within-site after the site effects; fixed terms village, system, village:system.")
add_note("regression: simulated (no suitable CSV: hanover.whitepine has no covariate) in this script with set.seed(20261207): 18 groups S01..S18, x = 0..9, y = round(250 + 10 x + u0 + u1 x + e, 3), (u0,u1) ~ N(0, [[600,20],[20,40]]), e ~ N(0, 25^2), about 20% of rows dropped at random (runif > 0.2 kept); written to tests/reference/inference_regression.csv (columns g, x, y). Model y ~ x + (1 + x | g), unstructured 2x2 G.")

result <- list(
  models = models,
  comparisons = cmp,
  notes = notes,
  versions = list(R = R.version.string,
                  lme4 = as.character(packageVersion("lme4")),
                  lmerTest = as.character(packageVersion("lmerTest")),
                  pbkrtest = as.character(packageVersion("pbkrtest")),
                  emmeans = as.character(packageVersion("emmeans")),
                  Matrix = as.character(packageVersion("Matrix")),
                  jsonlite = as.character(packageVersion("jsonlite"))),
  created = format(Sys.time(), "%Y-%m-%d %H:%M:%S UTC", tz = "UTC"),
  generator = "tests/reference/inference.R",
  timing_seconds = proc.time()[["elapsed"]] - t_start
)
writeLines(toJSON(result, digits = NA, auto_unbox = TRUE, pretty = TRUE,
                  null = "null", na = "null"), out_file)
cat("wrote", out_file, "in", round(result$timing_seconds, 1), "s\n")
