## ---------------------------------------------------------------------------
## structures.R -- REML reference numbers for covariance structures between
## trials (mothers' effects in a multi-environment progeny trial).
##
## Rerun (from the repository root, /work/main; about 30 s):
##   /work/main/.venv/bin/python tests/structures/met_data.py /tmp/met_data.csv
##   Rscript tests/reference/structures.R /tmp/met_data.csv tests/reference/structures.json
##
## Written with R 4.2.2 Patched (2022-11-10 r83330), lme4 1.1.31,
## glmmTMB 1.1.5, TMB 1.9.2, Matrix 1.5.3, jsonlite 1.8.4 (numpy 2.4.6 and
## pandas 3.1.1 for the data).  Date: see "created" in the JSON.
##
## Data: tests/structures/met_data.py (seed 101): 6 trials x 900 trees, 120
##   mothers (96 per trial), 6 blocks per trial (numbered within trial).
##   Mothers' effects across trials: u_m ~ N(0, Lambda Lambda' + Psi) with 2
##   factors; block and residual variances differ by trial in the generator
##   but every model here (except us_hetres) fits ONE block variance and ONE
##   residual variance.  In R: Trial, Mother factors; blocks = Trial:Block.
##
## Models (all REML; fixed part y ~ 0 + Trial; random (1 | Trial:Block)):
##   diag      glmmTMB  diag(0 + Trial | Mother)                        G = diag(g_t)
##   us        glmmTMB  us(0 + Trial | Mother)                          G unstructured
##   corh      glmmTMB  cs(0 + Trial | Mother)   heterogeneous variances + one
##                      common correlation (checked: all off-diagonal
##                      correlations of VarCorr are equal, "corh_check")
##   corv      lme4     (1 | Mother) + (1 | Trial:Mother)               G = sM J + sTM I
##             (also fitted with glmmTMB: "corv_glmmTMB"; logLik compared)
##   fa1, fa2  glmmTMB  rr(0 + Trial | Mother, d = k) + diag(0 + Trial | Mother)
##                      G = Lambda Lambda' + Psi (Lambda not identifiable up to
##                      rotation: compare G, Psi and logLik only)
##   us_hetres glmmTMB  us(0 + Trial | Mother), dispformula = ~ 0 + Trial
##   us / us_hetres: if the plain us fit ends with a non-positive-definite
##   Hessian and a (nearly) singular G, the estimate is on the boundary of
##   the PSD cone; it is then computed with rr(0 + Trial | Mother, d = 5)
##   (all rank-5 G), polished, and checked for KKT along the null vector
##   ("kkt_check").  With this data set that happens for "us" (REML G of rank 5).
##
## Optimisation (glmmTMB): nlminb with iter.max = eval.max = 1e4,
##   rel.tol = 1e-14; then Newton steps on TMB's REML objective (exact
##   gradient obj$gr, Hessian by optimHess of that gradient) and a refit
##   started at the polished parameters; repeated (at most 3 rounds) until the
##   refit's max |gradient| < 1e-5.  fa fits are also started from 8 random
##   points (set.seed(20240601)) and the best nlminb fit is polished.
##   Random-effect variances at 0 (log SD drifting to -Inf) are fixed at log
##   SD = -15 with glmmTMB's `map`, reported as exactly 0, and listed in
##   "boundary" (see notes in the JSON).
##   lme4 (corv): bobyqa, rhobeg = 2e-4, rhoend = 2e-11, maxfun = 1e5.
##
## Output (JSON; numbers with 15 significant digits): "data" (nobs, sum_y,
##   exact integer checksums, label checksums, counts), "models" (one object
##   per model: logLik_REML, df, G (6 x 6, list of rows, trials T1..T6),
##   block_var, residual, fixef, convergence, ...), "comparisons",
##   "logLik_direct_check", "notes", "versions", "created", "timing_seconds".
## ---------------------------------------------------------------------------

suppressPackageStartupMessages({
  library(lme4)
  library(glmmTMB)
  library(Matrix)
  library(jsonlite)
})

args <- commandArgs(trailingOnly = TRUE)
data_file <- if (length(args) >= 1) args[1] else "/tmp/met_data.csv"
out_file <- if (length(args) >= 2) args[2] else "tests/reference/structures.json"

t_script <- proc.time()[["elapsed"]]
elapsed <- function(expr) {
  t0 <- proc.time()[["elapsed"]]
  force(expr)
  proc.time()[["elapsed"]] - t0
}
named_list <- function(x) as.list(setNames(unname(x), names(x)))
mat_rows <- function(M) lapply(seq_len(nrow(M)), function(i) unname(M[i, ]))

## ---- data --------------------------------------------------------------------
raw <- read.csv(data_file, stringsAsFactors = FALSE)
stopifnot(identical(names(raw), c("Trial", "Block", "Mother", "y")))
dat <- raw
dat$Trial <- factor(dat$Trial, levels = paste0("T", 1:6))
dat$Mother <- factor(dat$Mother)
dat$Block <- factor(dat$Block)
stopifnot(!anyNA(dat$Trial))
trials <- levels(dat$Trial)
nt <- length(trials)

label_checksum <- function(x) {
  lab <- as.character(x)
  cp <- vapply(lab, function(s) sum(utf8ToInt(s)), numeric(1), USE.NAMES = FALSE)
  sum(seq_along(lab) * cp)
}
y_int <- round(dat$y * 1e4)                       # y has 4 decimals: exact integers
stopifnot(max(abs(y_int / 1e4 - dat$y)) < 1e-9)
data_info <- list(
  file = data_file,
  generator = "/work/main/.venv/bin/python tests/structures/met_data.py /tmp/met_data.csv  (met_data(seed = 101))",
  nobs = nrow(dat),
  sum_y = sum(dat$y),
  sum_y_sq = sum(dat$y^2),
  checksum_y_int = sum(y_int),
  checksum_y_int_weighted = sum(seq_along(y_int) * y_int),
  checksum_definition = paste(
    "y_int = round(y * 1e4) (y has 4 decimals, so y_int is exact);",
    "checksum_y_int = sum(y_int); checksum_y_int_weighted = sum over rows i = 1..n",
    "(1-based, CSV row order) of i * y_int.  label_checksum: sum over rows of",
    "i * sum(code points of the label), label = as.character(x) in R (Block: '1'..'6'),",
    "str(x) in Python."),
  label_checksum = list(Trial = label_checksum(raw$Trial),
                        Block = label_checksum(raw$Block),
                        Mother = label_checksum(raw$Mother)),
  md5_csv = unname(tools::md5sum(data_file)),
  md5_note = "md5 of the CSV as written by pandas; depends on float formatting, informational only",
  n_per_trial = as.list(table(dat$Trial)),
  mothers_per_trial = as.list(tapply(dat$Mother, dat$Trial, function(m) length(unique(m)))),
  n_levels = list(Trial = nlevels(dat$Trial), Mother = nlevels(dat$Mother),
                  `Trial:Block` = nlevels(interaction(dat$Trial, dat$Block, drop = TRUE)),
                  `Trial:Mother` = nlevels(interaction(dat$Trial, dat$Mother, drop = TRUE))),
  mean_y_per_trial = as.list(tapply(dat$y, dat$Trial, mean))
)
cat(sprintf("data: n = %d, sum(y) = %.10f, mothers = %d\n", nrow(dat), sum(dat$y), nlevels(dat$Mother)))

## ---- glmmTMB -------------------------------------------------------------------
tmb_ctrl <- glmmTMBControl(optCtrl = list(iter.max = 1e4, eval.max = 1e4, rel.tol = 1e-14))
LOG_SD_ZERO <- -15
GRAD_TOL <- 1e-5

## which entries of the theta vector are log SDs (candidates for a 0 variance)
theta_layout <- function(m) {
  rs <- m$modelInfo$reStruc$condReStruc
  out <- list(); off <- 0
  for (k in seq_along(rs)) {
    r <- rs[[k]]
    code <- names(glmmTMB:::.valid_covstruct)[match(r$blockCode, glmmTMB:::.valid_covstruct)]
    idx <- off + seq_len(r$blockNumTheta)
    logsd <- switch(code, diag = idx, us = idx[seq_len(r$blockSize)],
                    cs = idx[seq_len(r$blockSize)], rr = integer(0), integer(0))
    out[[k]] <- list(term = names(rs)[k], code = code, size = r$blockSize, idx = idx, logsd = logsd)
    off <- off + r$blockNumTheta
  }
  out
}

fit_glmmTMB <- function(formula, dispformula = ~ 1, n_random_starts = 0, seed = 20240601) {
  warns <- character(0)
  fit_quietly <- function(...) withCallingHandlers(
    glmmTMB(formula, dispformula = dispformula, data = dat, REML = TRUE,
            control = tmb_ctrl, ...),
    warning = function(w) {
      warns <<- c(warns, conditionMessage(w))
      invokeRestart("muffleWarning")
    })

  t_first <- NA
  tm <- elapsed({
    t_first <- elapsed(m0 <- fit_quietly())
    first <- list(nlminb_message = m0$fit$message,
                  max_abs_gradient = max(abs(m0$sdr$gradient.fixed)),
                  REML_objective = m0$fit$objective,
                  logLik_REML = -m0$fit$objective,
                  warnings = as.list(unique(warns)))
    layout <- theta_layout(m0)
    obj <- m0$obj                      # objective in all parameters (no map)
    p <- m0$fit$par
    ith <- which(names(p) == "theta")

    ## extra random starts (fa models: multimodal likelihood)
    starts <- NULL
    if (n_random_starts > 0) {
      set.seed(seed)
      pl0 <- obj$env$parList(p)
      objs <- numeric(0); Gs <- list()
      for (s in seq_len(n_random_starts)) {
        th <- pl0$theta
        for (L in layout) {
          th[L$idx] <- if (L$code == "rr") rnorm(length(L$idx), 0, 3)
                       else log(sqrt(runif(length(L$idx), 1, 40)))
        }
        warns <- character(0)
        ms <- tryCatch(fit_quietly(start = list(theta = th, betad = pl0$betad)),
                       error = function(e) NULL)
        ob <- if (is.null(ms)) NA else ms$fit$objective
        objs <- c(objs, ob)
        if (!is.null(ms)) {
          vcs <- VarCorr(ms)$cond
          Gs[[s]] <- Reduce(`+`, lapply(vcs[grep("Block", names(vcs), invert = TRUE)], as.matrix))
        } else Gs[[s]] <- NA
        if (!is.null(ms) && is.finite(ob) && ob < obj$fn(p) - 1e-9) p <- ms$fit$par
      }
      starts <- list(n = n_random_starts, seed = seed,
                     logLik_REML_nlminb = as.list(-objs),
                     logLik_REML_default_start = -m0$fit$objective,
                     best_logLik_REML_nlminb = max(-c(objs, m0$fit$objective), na.rm = TRUE),
                     G_nlminb = Gs)
    }

    logsd_idx <- ith[unlist(lapply(layout, `[[`, "logsd"))]
    rounds <- list()
    for (round in 1:3) {
      ## boundary candidates: log SD < -2 where setting it to -15 does not hurt
      at_bound <- integer(0)
      for (j in logsd_idx[p[logsd_idx] < -2]) {
        q <- p; q[j] <- LOG_SD_ZERO
        if (obj$fn(q) <= obj$fn(p) + 1e-12) at_bound <- c(at_bound, j)
      }
      p[at_bound] <- LOG_SD_ZERO
      free <- setdiff(seq_along(p), at_bound)

      ## Newton polish of the free parameters (with step halving)
      fn <- function(x) { q <- p; q[free] <- x; obj$fn(q) }
      gr <- function(x) { q <- p; q[free] <- x; as.vector(obj$gr(q))[free] }
      x <- p[free]
      steps <- numeric(0)
      for (i in 1:20) {
        H <- optimHess(x, fn, gr)
        step <- tryCatch(solve(H, gr(x)), error = function(e) NULL)
        if (is.null(step)) break
        f_old <- fn(x); a <- 1
        while (a > 1e-4 && !(fn(x - a * step) <= f_old + 1e-10)) a <- a / 2
        x <- x - a * step
        steps <- c(steps, max(abs(a * step)))
        if (max(abs(a * step)) < 1e-9) break
      }
      p[free] <- x
      polished_obj <- obj$fn(p)
      polished_grad <- max(abs(as.vector(obj$gr(p))[free]))

      ## refit from the polished parameters (boundary ones fixed via map)
      pl <- obj$env$parList(p)
      map <- NULL
      if (length(at_bound)) {
        theta_map <- seq_along(ith)
        theta_map[match(at_bound, ith)] <- NA
        map <- list(theta = factor(theta_map))
      }
      warns <- character(0)
      m <- fit_quietly(start = list(betad = pl$betad, theta = pl$theta), map = map)
      g_ref <- max(abs(m$sdr$gradient.fixed))
      rounds[[round]] <- list(newton_steps = as.list(steps),
                              polished_logLik_REML = -polished_obj,
                              polished_max_abs_gradient = polished_grad,
                              refit_logLik_REML = -m$fit$objective,
                              refit_max_abs_gradient = g_ref,
                              boundary_theta_index = as.list(at_bound))
      if (g_ref < GRAD_TOL) break
      ## continue from the refit's parameters
      pfull <- p
      pfull[free] <- m$fit$par
      p <- pfull
    }
    boundary_deriv <- sapply(at_bound, function(j) {
      q <- p; q[j] <- 0.5 * log(1e-6)
      (obj$fn(q) - obj$fn(p)) / 1e-6
    })
  })

  ## ---- extract
  vc <- VarCorr(m)$cond
  terms <- names(vc)
  blk <- grep("Block", terms)
  stopifnot(length(blk) == 1)
  block_var <- unname(vc[[blk]][1, 1])

  rep <- m$obj$env$report(m$obj$env$last.par.best)
  mother_terms <- setdiff(seq_along(vc), blk)
  Gparts <- list(); Lambda <- NULL; Psi <- NULL; corr_term <- NULL
  for (k in mother_terms) {
    L <- layout[[k]]
    if (L$code == "rr") {
      Lambda <- rep$fact_load[[k]]
      dimnames(Lambda) <- list(trials, paste0("factor", seq_len(ncol(Lambda))))
      Gparts[[length(Gparts) + 1]] <- Lambda %*% t(Lambda)
    } else if (L$size == nt) {
      sdv <- rep$sd[[k]]
      v <- sdv^2
      ## boundary (mapped) log SDs -> exactly 0
      jb <- match(ith[L$idx[seq_len(nt)]], at_bound)
      v[!is.na(jb)] <- 0
      if (L$code == "diag") {
        if (!is.null(Lambda) || any(sapply(layout[mother_terms], `[[`, "code") == "rr")) Psi <- v
        Gparts[[length(Gparts) + 1]] <- diag(v)
      } else {
        C <- rep$corr[[k]]
        corr_term <- C
        Gparts[[length(Gparts) + 1]] <- diag(sdv) %*% C %*% diag(sdv)
      }
    } else {                           # scalar term (corv in glmmTMB)
      Gparts[[length(Gparts) + 1]] <- vc[[k]][1, 1]
    }
  }
  scalar_terms <- sapply(Gparts, length) == 1
  G <- matrix(0, nt, nt)
  for (g in Gparts) if (length(g) > 1) G <- G + g
  scalars <- NULL
  if (any(scalar_terms)) {
    stopifnot(all(scalar_terms), setequal(terms[mother_terms], c("Mother", "Trial:Mother")))
    sM <- vc[["Mother"]][1, 1]; sTM <- vc[["Trial:Mother"]][1, 1]
    scalars <- list(Mother = sM, `Trial:Mother` = sTM)
    G <- matrix(sM, nt, nt) + diag(sTM, nt)
  }
  ## cross-check with VarCorr (sum of the Mother terms)
  Gvc <- matrix(0, nt, nt)
  for (k in mother_terms) Gvc <- Gvc + (if (length(vc[[k]]) == 1) NA else as.matrix(vc[[k]]))
  gvc_diff <- if (anyNA(Gvc)) NA else max(abs(Gvc - G))
  dimnames(G) <- list(trials, trials)

  disp <- fixef(m)$disp
  residual <- if (length(disp) == 1) unname(exp(disp)) else {
    stopifnot(identical(names(disp), paste0("Trial", trials)))
    as.list(setNames(unname(exp(disp)), trials))
  }

  ll <- logLik(m)
  fe <- fixef(m)$cond
  sdr_cond <- TMB::sdreport(m$obj, par.fixed = m$fit$par, ignore.parm.uncertainty = TRUE)
  is_beta <- names(sdr_cond$par.random) == "beta"
  se_cond <- setNames(sqrt(sdr_cond$diag.cov.random[is_beta]), names(fe))
  grad <- m$sdr$gradient.fixed

  out <- list(
    package = "glmmTMB",
    formula = paste(deparse(formula, width.cutoff = 500), collapse = " "),
    dispformula = paste(deparse(dispformula), collapse = " "),
    logLik_REML = as.numeric(ll),
    df = attr(ll, "df") + length(at_bound),
    G = mat_rows(G),
    G_correlation = mat_rows(cov2cor(G)),
    block_var = block_var,
    residual = residual,
    fixef = named_list(fe),
    fixef_se = named_list(se_cond),
    boundary = list(),
    theta_internal = named_list(m$fit$par),
    convergence = list(
      max_abs_gradient = max(abs(grad)),
      pdHess = m$sdr$pdHess,
      nlminb_convergence = m$fit$convergence,
      nlminb_message = m$fit$message,
      first_fit = first,
      polish_rounds = rounds,
      G_minus_VarCorr_max_abs = gvc_diff,
      warnings = as.list(unique(warns))),
    timing_seconds = tm,
    timing_first_fit_seconds = t_first
  )
  if (!is.null(starts)) out$convergence$random_starts <- starts
  if (!is.null(Lambda)) {
    if (!is.null(Psi)) out$Psi <- as.list(setNames(Psi, trials))
    out$Lambda_glmmTMB <- mat_rows(Lambda)
    out$Lambda_note <- "glmmTMB's lower-triangular loadings (rows T1..T6); identifiable only up to rotation/sign -- do not compare"
    out$LambdaLambdaT_eigenvalues <- eigen(Lambda %*% t(Lambda), symmetric = TRUE, only.values = TRUE)$values[seq_len(ncol(Lambda))]
  }
  if (!is.null(starts)) {
    G_st <- out$convergence$random_starts$G_nlminb
    out$convergence$random_starts$G_nlminb <- NULL
    out$convergence$random_starts$logLik_deficit_vs_final <- as.list(out$logLik_REML - unlist(starts$logLik_REML_nlminb))
    out$convergence$random_starts$G_max_abs_diff_vs_final <- as.list(sapply(G_st, function(g) max(abs(g - G))))
    out$convergence$random_starts$note <- paste(
      "plain nlminb fits from random starts (not polished); logLik deficit and max |G - G_final|",
      "show whether any reached a different optimum")
  }
  if (!is.null(corr_term)) out$correlation_term <- mat_rows(corr_term)
  if (!is.null(scalars)) out$varcomp <- scalars
  if (length(at_bound)) {
    out$boundary <- as.list(names(m0$fit$par)[at_bound])
    nm <- character(0)
    for (j in at_bound) for (L in layout) if ((j - min(ith) + 1) %in% L$idx)
      nm <- c(nm, sprintf("%s(%s)[%s]", L$code, L$term, trials[which(L$idx == j - min(ith) + 1)]))
    out$boundary <- as.list(nm)
    out$boundary_derivative <- as.list(setNames(boundary_deriv, nm))
  }
  out$fit_object <- m
  out
}

## ---- lme4 (corv) -----------------------------------------------------------
fit_lme4_corv <- function() {
  ctrl <- lmerControl(optimizer = "bobyqa",
                      optCtrl = list(rhobeg = 2e-4, rhoend = 2e-11, maxfun = 1e5))
  f <- y ~ 0 + Trial + (1 | Trial:Block) + (1 | Mother) + (1 | Trial:Mother)
  tm <- elapsed(m <- lmer(f, data = dat, REML = TRUE, control = ctrl))
  vc <- as.data.frame(VarCorr(m))
  v <- setNames(vc$vcov, vc$grp)
  sM <- v[["Mother"]]; sTM <- v[["Trial:Mother"]]
  G <- matrix(sM, nt, nt) + diag(sTM, nt)
  ll <- logLik(m, REML = TRUE)
  fe <- fixef(m)
  list(
    package = "lme4",
    formula = paste(deparse(f, width.cutoff = 500), collapse = " "),
    logLik_REML = as.numeric(ll),
    df = attr(ll, "df"),
    REMLcrit = REMLcrit(m),
    varcomp = list(Mother = sM, `Trial:Mother` = sTM),
    corv = list(total_variance = sM + sTM, correlation = sM / (sM + sTM)),
    G = mat_rows(G),
    block_var = v[["Trial:Block"]],
    residual = v[["Residual"]],
    fixef = named_list(fe),
    fixef_se = named_list(setNames(sqrt(diag(as.matrix(vcov(m)))), names(fe))),
    theta = named_list(getME(m, "theta")),
    convergence = list(
      optimizer = "bobyqa (rhobeg = 2e-4, rhoend = 2e-11, maxfun = 1e5)",
      max_abs_gradient = max(abs(m@optinfo$derivs$gradient)),
      gradient_scale = "lme4's finite-difference gradient of REMLcrit (= -2 logLik) w.r.t. theta (relative Cholesky factors)",
      hessian_eigen_min = min(eigen(m@optinfo$derivs$Hessian, only.values = TRUE)$values),
      pdHess = all(eigen(m@optinfo$derivs$Hessian, only.values = TRUE)$values > 0),
      messages = as.list(c(m@optinfo$conv$lme4$messages, m@optinfo$warnings))),
    timing_seconds = tm
  )
}

## ---- independent REML log-likelihood (Henderson) -------------------------------
## -2 logL_R = (n-p) log(2 pi) + log|V| + log|X'V^-1X| + r'V^-1 r, V = Z G_all Z' + R
##           = (n-p) log(2 pi) + log|R| + log|G_b| + log|M| + y'R^-1y - s'M^-1 s,
## M = W'R^-1W + diag(0, G_b^-1, I), W = [X Z_b Z_u (I_120 (x) F)], s = W'R^-1 y,
## where G = F F' (F from the eigen-decomposition of G, keeping eigenvalues
## > 1e-10 * largest, so a singular G -- us on the boundary -- is handled) and
## the mothers' effects are u_m = F f_m, f_m ~ N(0, I), for all 120 mothers
## (effects of a mother absent from a trial have no data and integrate out).
indicator <- function(f) t(as(factor(f), "sparseMatrix"))
reml_loglik_direct <- function(G, block_var, residual) {
  y <- dat$y - ave(dat$y, dat$Trial)       # REML invariant to y -> y + X b
  X <- model.matrix(~ 0 + Trial, dat)
  nm <- nlevels(dat$Mother)
  Zb <- indicator(interaction(dat$Trial, dat$Block, drop = TRUE))
  col <- (as.integer(dat$Mother) - 1) * nt + as.integer(dat$Trial)   # mother-major
  Zu <- sparseMatrix(i = seq_len(nrow(dat)), j = col, x = 1, dims = c(nrow(dat), nm * nt))
  e <- eigen(G, symmetric = TRUE)
  keep <- e$values > 1e-10 * max(e$values)
  F <- e$vectors[, keep, drop = FALSE] %*% diag(sqrt(e$values[keep]), sum(keep))
  Zf <- Zu %*% kronecker(Diagonal(nm), Matrix(F))
  rvar <- if (is.list(residual)) unlist(residual)[as.character(dat$Trial)] else rep(residual, nrow(dat))
  W <- cbind(Matrix(X, sparse = TRUE), Zb, Zf)
  WR <- W / rvar
  P <- bdiag(Matrix(0, ncol(X), ncol(X)), Diagonal(ncol(Zb), 1 / block_var), Diagonal(ncol(Zf)))
  M <- forceSymmetric(crossprod(W, WR) + P)
  s <- as.vector(crossprod(WR, y))
  n <- length(y); p <- ncol(X)
  logdetM <- as.numeric(determinant(M, logarithm = TRUE)$modulus)
  quad <- sum(y^2 / rvar) - sum(s * as.vector(solve(M, s)))
  -0.5 * ((n - p) * log(2 * pi) + sum(log(rvar)) + ncol(Zb) * log(block_var) +
            logdetM + quad)
}

## ---- us with a possibly singular G ---------------------------------------------
## glmmTMB's us() parametrises G by log SDs and an unnormalised unit lower-
## triangular Cholesky factor of the correlation matrix (filled row-wise);
## a singular G is only reached as some of these go to +-Inf, where nlminb
## stops with a non-positive-definite Hessian.  If the plain us fit ends
## like that, G is taken to be on the boundary (rank nt - 1) and the REML
## supremum is computed with rr(0 + Trial | Mother, d = nt - 1), which spans
## exactly the rank-(nt - 1) covariance matrices and is regular there.  The
## KKT condition in the missing direction v (null vector of G) is checked on
## the us objective itself: d(-logLik)/d eps of G + eps v v' at eps -> 0+.
us_theta <- function(G) {                    # G -> glmmTMB us theta (log SD, corr)
  sdv <- sqrt(diag(G))
  K <- t(chol(cov2cor(G)))
  Lu <- K / diag(K)                          # unit lower-triangular, rows scaled
  c(log(sdv), t(Lu)[upper.tri(Lu)])
}

fit_us <- function(dispformula = ~ 1) {
  f_us <- fm("us(0 + Trial | Mother)")
  warns <- character(0)
  tm_plain <- elapsed(m_plain <- withCallingHandlers(
    glmmTMB(f_us, dispformula = dispformula, data = dat, REML = TRUE, control = tmb_ctrl),
    warning = function(w) { warns <<- c(warns, conditionMessage(w)); invokeRestart("muffleWarning") }))
  G_plain <- as.matrix(VarCorr(m_plain)$cond$Mother)
  ev_plain <- eigen(G_plain, symmetric = TRUE, only.values = TRUE)$values
  ## round trip of the us parametrisation (used for the KKT check)
  th_plain <- m_plain$fit$par[names(m_plain$fit$par) == "theta"]
  n_block_theta <- length(th_plain) - nt * (nt + 1) / 2
  us_roundtrip <- max(abs(us_theta(G_plain) - th_plain[-seq_len(n_block_theta)]))
  plain <- list(logLik_REML = -m_plain$fit$objective,
                nlminb_message = m_plain$fit$message,
                max_abs_gradient = max(abs(m_plain$sdr$gradient.fixed)),
                pdHess = m_plain$sdr$pdHess,
                G = mat_rows(G_plain), G_eigenvalues = ev_plain,
                theta_internal = named_list(m_plain$fit$par),
                warnings = as.list(unique(warns)),
                timing_seconds = tm_plain,
                us_parametrisation_roundtrip_max_abs = us_roundtrip)
  if (isTRUE(m_plain$sdr$pdHess) && min(ev_plain) > 1e-4 * max(ev_plain)) {
    out <- fit_glmmTMB(f_us, dispformula)
    out$convergence$plain_us_fit <- plain
    out$G_on_boundary <- FALSE
    return(out)
  }
  ## boundary path
  out <- fit_glmmTMB(fm(sprintf("rr(0 + Trial | Mother, d = %d)", nt - 1)), dispformula)
  m_rr <- out$fit_object
  G <- do.call(rbind, out$G)
  e <- eigen(G, symmetric = TRUE)
  v <- e$vectors[, nt]
  obj_us <- m_plain$obj
  p_rr <- m_rr$fit$par
  base_par <- m_plain$fit$par
  base_par[names(base_par) == "betad"] <- p_rr[names(p_rr) == "betad"]
  ith <- which(names(base_par) == "theta")
  base_par[ith[seq_len(n_block_theta)]] <- p_rr[names(p_rr) == "theta"][seq_len(n_block_theta)]
  f_eps <- function(eps) {
    q <- base_par
    q[ith[-seq_len(n_block_theta)]] <- us_theta(G + eps * tcrossprod(v))
    obj_us$fn(q)
  }
  eps <- c(1e-2, 1e-3, 1e-4, 1e-5)
  f0 <- -out$logLik_REML
  fe <- sapply(eps, f_eps)
  out$convergence$boundary_fit <- sprintf(
    "G on the boundary (singular): reported fit is rr(0 + Trial | Mother, d = %d) [%s], polished", nt - 1,
    out$formula)
  out$convergence$plain_us_fit <- plain
  out$formula <- paste(deparse(f_us, width.cutoff = 500), collapse = " ")
  out$df <- out$df + (nt * (nt + 1) / 2 - (nt * (nt - 1) - (nt - 1) * (nt - 2) / 2))
  out$G_on_boundary <- TRUE
  out$kkt_check <- list(
    definition = paste("v = eigenvector of the smallest eigenvalue of G; us objective (-logLik,",
                       "glmmTMB us parametrisation, other parameters at the reported fit)",
                       "at G + eps v v'; derivative = (f(eps) - f(0)) / eps with f(0) = -logLik_REML.",
                       "Positive derivatives: no ascent out of the boundary, i.e. the singular G is the constrained REML optimum."),
    null_vector = v,
    eps = eps,
    minus_logLik_at_eps = fe,
    derivative = (fe - f0) / eps,
    logLik_gain_over_plain_us_fit = out$logLik_REML - plain$logLik_REML)
  out
}

## ---- fits --------------------------------------------------------------------------
base <- "y ~ 0 + Trial + (1 | Trial:Block) + "
fm <- function(re) as.formula(paste0(base, re))
models <- list()
report <- function(k) {
  m <- models[[k]]
  cat(sprintf("%-14s logLik %.8f  df %2d  max|grad| %.2e  pdHess %s  (%.1f s)\n", k,
              m$logLik_REML, as.integer(m$df), m$convergence$max_abs_gradient,
              m$convergence$pdHess, m$timing_seconds))
}
models$diag <- fit_glmmTMB(fm("diag(0 + Trial | Mother)")); report("diag")
models$us <- fit_us(); report("us")
models$corh <- fit_glmmTMB(fm("cs(0 + Trial | Mother)")); report("corh")
models$corv <- fit_lme4_corv(); report("corv")
models$corv_glmmTMB <- fit_glmmTMB(fm("(1 | Mother) + (1 | Trial:Mother)")); report("corv_glmmTMB")
models$fa1 <- fit_glmmTMB(fm("rr(0 + Trial | Mother, d = 1) + diag(0 + Trial | Mother)"),
                          n_random_starts = 8); report("fa1")
models$fa2 <- fit_glmmTMB(fm("rr(0 + Trial | Mother, d = 2) + diag(0 + Trial | Mother)"),
                          n_random_starts = 8); report("fa2")
models$us_hetres <- fit_us(~ 0 + Trial)
report("us_hetres")

## ---- model-specific summaries -------------------------------------------------------
## corh: check that glmmTMB's cs is heterogeneous compound symmetry
Ch <- do.call(rbind, models$corh$correlation_term)
off <- Ch[upper.tri(Ch)]
Gh <- do.call(rbind, models$corh$G)
models$corh$corh <- list(variances = as.list(setNames(diag(Gh), trials)),
                         correlation = mean(off))
models$corh$corh_check <- list(
  offdiag_correlation_range = max(off) - min(off),
  variances_distinct = length(unique(signif(diag(Gh), 6))) == nt,
  conclusion = "glmmTMB cs() = heterogeneous variances (one per trial) + one common correlation (corh)")
stopifnot(max(off) - min(off) < 1e-12)

## us / us_hetres: eigenvalues of G (is the unstructured estimate on the boundary?)
for (k in c("us", "us_hetres", "fa1", "fa2", "diag", "corh")) {
  Gk <- do.call(rbind, models[[k]]$G)
  models[[k]]$G_eigenvalues <- eigen(Gk, symmetric = TRUE, only.values = TRUE)$values
}

## lme4 vs glmmTMB on corv
a <- models$corv; b <- models$corv_glmmTMB
corv_cmp <- list(
  logLik_lme4 = a$logLik_REML,
  logLik_glmmTMB = b$logLik_REML,
  logLik_abs_diff = abs(a$logLik_REML - b$logLik_REML),
  varcomp_max_rel_diff = max(abs(unlist(a$varcomp) / unlist(b$varcomp[names(a$varcomp)]) - 1),
                             abs(a$block_var / b$block_var - 1), abs(a$residual / b$residual - 1)),
  fixef_max_abs_diff = max(abs(unlist(a$fixef) - unlist(b$fixef))))
b_sM <- b$varcomp$Mother; b_sTM <- b$varcomp$`Trial:Mother`
models$corv_glmmTMB$corv <- list(total_variance = b_sM + b_sTM, correlation = b_sM / (b_sM + b_sTM))

## nesting order of the REML log-likelihoods (same fixed effects, so comparable)
ll <- sapply(models, `[[`, "logLik_REML")
nesting <- list(
  `corv <= corh` = unname(ll["corv"] <= ll["corh"] + 1e-6),
  `corh <= us` = unname(ll["corh"] <= ll["us"] + 1e-6),
  `diag <= us` = unname(ll["diag"] <= ll["us"] + 1e-6),
  `diag <= fa1` = unname(ll["diag"] <= ll["fa1"] + 1e-6),
  `fa1 <= fa2` = unname(ll["fa1"] <= ll["fa2"] + 1e-6),
  `fa2 <= us` = unname(ll["fa2"] <= ll["us"] + 1e-6),
  `us <= us_hetres` = unname(ll["us"] <= ll["us_hetres"] + 1e-6))

## independent logLik check
direct <- lapply(models, function(m) {
  G <- do.call(rbind, m$G)
  d <- reml_loglik_direct(G, m$block_var, m$residual)
  list(logLik_REML_direct = d, abs_diff = abs(d - m$logLik_REML))
})
for (k in names(direct)) cat(sprintf("direct check %-14s %.3e\n", k, direct[[k]]$abs_diff))

## ---- notes -----------------------------------------------------------------------------
notes <- c(
  "All fits are REML with fixed effects y ~ 0 + Trial (one mean per trial) and one block variance (1 | Trial:Block).  logLik_REML is logLik() of the fit (lme4: logLik(m, REML = TRUE)); all models have the same fixed effects, so their REML log-likelihoods are comparable.",
  "G: 6 x 6 covariance matrix of mothers' effects between trials, list of rows, rows/columns T1..T6.  G_correlation = cov2cor(G).  residual: residual variance (scalar), or per-trial dict for us_hetres (exp of glmmTMB's dispersion coefficients, which are log(sigma^2) for the gaussian family).",
  "corh = glmmTMB cs(0 + Trial | Mother): heterogeneous variances + one common correlation (verified: corh_check$offdiag_correlation_range ~ 0); 'corh' gives the 6 variances and the correlation.",
  "corv: lme4 y ~ 0 + Trial + (1|Trial:Block) + (1|Mother) + (1|Trial:Mother); G = sM * J + sTM * I; corv$total_variance = sM + sTM, corv$correlation = sM / (sM + sTM).  corv_glmmTMB is the same model fitted with glmmTMB (see comparisons$corv_lme4_vs_glmmTMB).",
  "fa1/fa2: glmmTMB rr(0 + Trial | Mother, d = k) + diag(0 + Trial | Mother): G = Lambda Lambda' + Psi.  Lambda is not identifiable (rotation/sign); compare G, Psi and logLik only.  df counts the loadings as glmmTMB does (6k - k(k-1)/2) plus 6 specific variances.",
  "Boundary: a random-effect variance whose REML estimate is 0 is listed in the model's 'boundary', reported as exactly 0 (in Psi / G), and fixed at log SD = -15 (variance ~1e-13) in the reported glmmTMB fit via map; boundary_derivative = d(-logLik)/d(variance) at 0 (one-sided, step 1e-6; positive: 0 is the constrained optimum).  df still counts it as a parameter.  Compare such entries with an absolute tolerance.",
  "Convergence (glmmTMB): convergence$first_fit is the plain nlminb fit (rel.tol = 1e-14); the reported fit is a refit started from Newton-polished parameters (exact TMB gradient, optimHess Hessian), see polish_rounds.  max_abs_gradient is the max |gradient| of the REML objective (-logLik) of the reported fit w.r.t. glmmTMB's internal parameters (log SDs, correlation parameters, rr loadings, log residual variance); pdHess from TMB's sdreport.  For lme4: gradient of REMLcrit w.r.t. theta.",
  "fixef_se: SE of the trial means conditional on the variance parameters, sqrt(diag((X'V^-1X)^-1)) (lme4's vcov; glmmTMB via TMB::sdreport(ignore.parm.uncertainty = TRUE)).",
  "logLik_direct_check: the REML log-likelihood recomputed in plain R (Matrix, Henderson's mixed model equations) from the reported G, block_var and residual; confirms the constants of the REML log-likelihood and the parametrisations.",
  "corv (lme4, bobyqa) and corv_glmmTMB (polished, exact gradient ~1e-8) agree in logLik to ~1e-10 but in the variance components only to ~3e-7 relative: the REML surface is flat there (REMLcrit equal to 1e-10 at both) and lme4's optimum is known only to that precision; use corv_glmmTMB for tight comparisons of the corv variances (both report the same G, block_var, residual up to that).",
  "random_starts (fa models): nlminb fits from 8 random starting points (loadings ~ N(0, 3^2), variances ~ U(1, 40)); the best fit (default start included) was polished.")

## fa-specific notes (boundary, degeneracy)
for (k in c("fa1", "fa2")) {
  m <- models[[k]]
  if (length(m$boundary))
    notes <- c(notes, sprintf("%s: specific variance(s) Psi at the boundary 0: %s (reported Psi = 0; boundary_derivative d(-logLik)/dPsi at 0 = %s > 0, so 0 is the constrained optimum).",
                              k, paste(unlist(m$boundary), collapse = ", "),
                              paste(signif(unlist(m$boundary_derivative), 4), collapse = ", ")))
  ev <- m$LambdaLambdaT_eigenvalues
  if (min(ev) < 1e-6 * max(ev))
    notes <- c(notes, sprintf("%s: degenerate loadings (Lambda Lambda' eigenvalues %s).", k,
                              paste(signif(ev, 4), collapse = ", ")))
  rs <- m$convergence$random_starts
  defi <- max(unlist(rs$logLik_deficit_vs_final), -rs$logLik_REML_default_start + m$logLik_REML)
  gdiff <- max(unlist(rs$G_max_abs_diff_vs_final))
  notes <- c(notes, sprintf(paste(
    "%s: %d random starts + the default start: all nlminb fits ended within %.2g of the final",
    "logLik with max |G - G_final| <= %.2g%s"), k, rs$n, defi, gdiff,
    if (defi < 1e-2 && gdiff < 1) ", i.e. at the same optimum (no other local optimum found)."
    else "; SOME STARTS ENDED ELSEWHERE (other local optimum or early stop), see convergence$random_starts."))
}
for (k in c("us", "us_hetres")) {
  m <- models[[k]]
  ev <- m$G_eigenvalues
  if (isTRUE(m$G_on_boundary)) {
    notes <- c(notes, sprintf(paste(
      "%s: the REML estimate of the unstructured G is SINGULAR (rank %d; eigenvalues %s).",
      "glmmTMB's plain us fit stops short of it (pdHess FALSE, correlation parameters drifting",
      "to +-Inf, logLik %.6f); the reported numbers come from rr(0 + Trial | Mother, d = %d),",
      "which spans the rank-%d matrices, polished (logLik %.6f; gain over the plain us fit",
      "%.3g).  kkt_check: d(-logLik)/d eps along the null vector = %s (all > 0: singular G is",
      "the constrained optimum).  df counts the full us parameters (%d).  A sparsereml us fit must",
      "allow a PSD (semi-definite) G to reproduce this; compare G with an absolute tolerance."),
      k, sum(ev > 1e-10 * max(ev)), paste(signif(ev, 4), collapse = ", "),
      m$convergence$plain_us_fit$logLik_REML, nt - 1, nt - 1, m$logLik_REML,
      m$kkt_check$logLik_gain_over_plain_us_fit,
      paste(signif(m$kkt_check$derivative, 4), collapse = ", "), as.integer(m$df)))
  } else if (min(ev) < 1e-3 * max(ev)) {
    notes <- c(notes, sprintf("%s: G nearly singular (smallest eigenvalue %.4g, largest %.4g).", k, min(ev), max(ev)))
  }
}
if (!all(unlist(nesting))) notes <- c(notes, "WARNING: nesting order of logLik violated, see comparisons$nesting")

for (k in names(models)) models[[k]]$fit_object <- NULL

result <- list(
  description = "REML reference numbers for between-trial covariance structures of mothers' effects (tests/reference/structures.R)",
  rerun = "Rscript tests/reference/structures.R /tmp/met_data.csv tests/reference/structures.json",
  trials = trials,
  data = data_info,
  generator_truth = list(
    note = "true values in tests/structures/met_data.py (not estimates)",
    G = mat_rows(matrix(c(6, 5, 4, 2, 5.5, 3, 0, 2, -3, 4, 1, -1.5), 6) %*%
                   t(matrix(c(6, 5, 4, 2, 5.5, 3, 0, 2, -3, 4, 1, -1.5), 6)) + diag(c(4, 6, 3, 5, 2, 7))),
    Psi = c(4, 6, 3, 5, 2, 7),
    block_var = c(20, 35, 10, 25, 15, 30),
    residual = c(150, 220, 120, 180, 200, 160)),
  models = models,
  comparisons = list(
    corv_lme4_vs_glmmTMB = corv_cmp,
    nesting = nesting,
    logLik_REML = as.list(ll)),
  logLik_direct_check = direct,
  notes = notes,
  versions = list(R = R.version.string,
                  lme4 = as.character(packageVersion("lme4")),
                  glmmTMB = as.character(packageVersion("glmmTMB")),
                  TMB = as.character(packageVersion("TMB")),
                  Matrix = as.character(packageVersion("Matrix")),
                  jsonlite = as.character(packageVersion("jsonlite"))),
  created = format(Sys.time(), "%Y-%m-%d %H:%M:%S %Z"),
  timing_seconds = list(total = proc.time()[["elapsed"]] - t_script,
                        per_model = lapply(models, `[[`, "timing_seconds"))
)

writeLines(toJSON(result, auto_unbox = TRUE, digits = I(15), pretty = TRUE, null = "null", na = "null"),
           out_file)
cat("wrote", out_file, "\n")
