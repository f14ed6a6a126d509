## ---------------------------------------------------------------------------
## glmm_negbin_more.R -- reference numbers for negative binomial GLMMs with prior weights and
## with a correlated random intercept and slope (what glmm_negbin.R leaves out).
##
## Family: glmmTMB's nbinom2 (log link), Var(y) = mu + mu^2 / theta, theta = sigma(fit).  Every
## fit is polished as in glmm_negbin.R: nlminb on the fit's own TMB objective from its estimates
## with rel.tol = 1e-14; estimates, logLik and the fixed effects' standard errors are those of the
## polished optimum (sdreport).
##
## Cases (data written next to this file, so the Python tests need no R)
##   weighted
##       glmm_negbin_sim.csv (glmm_negbin.R's simulated crossed trial) with prior weights
##       w = 1 + (row - 1) %% 3 (glmm_negbin_weighted.csv): glmmTMB multiplies each record's log
##       density by its weight.  count ~ Trial + (1 | TrialBlock) + (1 | Mother), weights = w.
##   slopes
##       simulated counts (glmm_negbin_slopes.csv, set.seed(2718)): 60 mothers, 25 trees each, a
##       covariate x ~ N(0, 1); intercept log(3), slope 0.2; per mother (intercept, slope) ~
##       N(0, [[0.25, 0.05], [0.05, 0.04]]) (correlation 0.5); counts nbinom2 with theta = 3.
##       count ~ x + (1 + x | Mother): the covariance matrix of (intercept, slope) is recorded.
##
## Rerun from the repository root (under a minute):
##   Rscript tests/reference/glmm_negbin_more.R
## ---------------------------------------------------------------------------

suppressPackageStartupMessages({ library(glmmTMB); library(TMB); library(jsonlite) })

out_dir <- "tests/reference"
stopifnot(dir.exists(out_dir))
named_list <- function(x) as.list(setNames(unname(x), names(x)))

polished <- function(t) {
  obj <- t$obj
  o <- nlminb(t$fit$par, obj$fn, obj$gr, control = list(rel.tol = 1e-14, eval.max = 2000, iter.max = 2000))
  sd <- sdreport(obj, par.fixed = o$par)
  list(o = o, sd = sd, pn = names(t$fit$par))
}

res <- list(created = format(Sys.time(), "%Y-%m-%d"), generator = "tests/reference/glmm_negbin_more.R",
            versions = list(R = R.version.string, glmmTMB = as.character(packageVersion("glmmTMB")),
                            TMB = as.character(packageVersion("TMB"))))

## ---- weighted ------------------------------------------------------------------------------
sim <- read.csv(file.path(out_dir, "glmm_negbin_sim.csv"), stringsAsFactors = FALSE)
sim$w <- 1 + (seq_len(nrow(sim)) - 1) %% 3
write.csv(sim, file.path(out_dir, "glmm_negbin_weighted.csv"), row.names = FALSE)
t <- glmmTMB(count ~ Trial + (1 | TrialBlock) + (1 | Mother), data = sim, weights = w,
             family = nbinom2(link = "log"))
p <- polished(t); est <- p$sd$par.fixed; V <- p$sd$cov.fixed
ib <- which(p$pn == "beta"); it <- which(p$pn == "theta"); id <- which(p$pn == "betad")
res$weighted <- list(
  call = "glmmTMB(count ~ Trial + (1 | TrialBlock) + (1 | Mother), weights = w, family = nbinom2)",
  fixef = named_list(setNames(est[ib], names(fixef(t)$cond))),
  fixef_se = named_list(setNames(sqrt(diag(V)[ib]), names(fixef(t)$cond))),
  variances = named_list(setNames(exp(2 * est[it]), c("TrialBlock", "Mother"))),
  theta = exp(est[id]), logLik = -p$o$objective,
  polish = list(message = p$o$message, max_abs_gradient = max(abs(t$obj$gr(p$o$par)))))

## ---- correlated intercept and slope ---------------------------------------------------------
set.seed(2718)
G <- matrix(c(0.25, 0.05, 0.05, 0.04), 2)
n_m <- 60; per <- 25
slopes <- data.frame(Mother = rep(sprintf("M%02d", 1:n_m), each = per), x = rnorm(n_m * per),
                     stringsAsFactors = FALSE)
u <- matrix(rnorm(2 * n_m), n_m) %*% chol(G)
rownames(u) <- sprintf("M%02d", 1:n_m)
eta <- log(3) + 0.2 * slopes$x + u[slopes$Mother, 1] + u[slopes$Mother, 2] * slopes$x
slopes$count <- rnbinom(nrow(slopes), mu = exp(eta), size = 3)
write.csv(slopes, file.path(out_dir, "glmm_negbin_slopes.csv"), row.names = FALSE)
t <- glmmTMB(count ~ x + (1 + x | Mother), data = slopes, family = nbinom2(link = "log"))
p <- polished(t); est <- p$sd$par.fixed; V <- p$sd$cov.fixed
ib <- which(p$pn == "beta"); id <- which(p$pn == "betad")
## the covariance at the polished optimum: theta = (log sd_1, log sd_2, glmmTMB's correlation
## parameter), the correlation from it as glmmTMB's VarCorr computes it
invisible(t$obj$fn(p$o$par))
vc <- VarCorr(t)$cond$Mother
S <- matrix(as.numeric(vc), 2)
res$slopes <- list(
  call = "glmmTMB(count ~ x + (1 + x | Mother), family = nbinom2)",
  fixef = named_list(setNames(est[ib], names(fixef(t)$cond))),
  fixef_se = named_list(setNames(sqrt(diag(V)[ib]), names(fixef(t)$cond))),
  covariance = list(intercept = S[1, 1], covariance = S[1, 2], slope = S[2, 2]),
  theta = exp(est[id]), logLik = -p$o$objective,
  truth = list(covariance = list(intercept = 0.25, covariance = 0.05, slope = 0.04), theta = 3,
               fixef = list("(Intercept)" = log(3), x = 0.2)),
  polish = list(message = p$o$message, max_abs_gradient = max(abs(t$obj$gr(p$o$par)))))

writeLines(toJSON(res, auto_unbox = TRUE, digits = NA, pretty = TRUE), file.path(out_dir, "glmm_negbin_more.json"))
cat(sprintf("weighted: logLik %.6f theta %.6f; slopes: logLik %.6f theta %.6f\n", res$weighted$logLik,
            res$weighted$theta, res$slopes$logLik, res$slopes$theta))
