## ---------------------------------------------------------------------------
## glmm_negbin.R -- reference numbers for negative binomial GLMMs (issue 18).
##
## Family: glmmTMB's nbinom2 (log link), Var(y) = mu + mu^2 / theta, theta = sigma(fit)
## = exp(betad), estimated by maximum Laplace likelihood jointly with the fixed effects and
## the variances.  Every fit is polished: nlminb on the fit's own TMB objective from its
## estimates with rel.tol = 1e-14 (glmmTMB's default stop can be ~1e-4 relative short), and
## the reported estimates, logLik and standard errors are those of the polished optimum
## (standard errors from TMB's sdreport at the polished parameters: the inverse Hessian of
## (beta, log sd, log theta), transformed by the delta method: SE(var) = 2 var SE(log sd),
## SE(theta) = theta SE(log theta)).
##
## Cases (data written next to this file, so the Python tests need no R)
##   owls
##       glmmTMB::Owls (glmm_owls.csv): NCalls = SiblingNegotiation,
##       NCalls ~ FoodTreatment + offset(log(BroodSize)) + (1 | Nest).
##   sim_crossed
##       simulated counts (glmm_negbin_sim.csv, set.seed(8128)): 3 trials (fixed Trial),
##       5 blocks per trial (random Trial:Block, variance 0.1), 80 mothers crossed with
##       trials (random Mother, variance 0.2), 12 trees per mother and trial (2880 trees),
##       intercept log(4), trial effects 0, 0.3, -0.2; counts nbinom2 with theta = 2.5.
##       count ~ Trial + (1 | TrialBlock) + (1 | Mother)  (TrialBlock = Trial:Block).
##       The truth is recorded under "truth".
##
## Rerun from the repository root (under a minute):
##   Rscript tests/reference/glmm_negbin.R
## ---------------------------------------------------------------------------

suppressPackageStartupMessages({ library(glmmTMB); library(TMB); library(jsonlite) })

out_dir <- "tests/reference"
stopifnot(dir.exists(out_dir))
named_list <- function(x) as.list(setNames(unname(x), names(x)))

fit_case <- function(formula, data, terms) {
  t <- glmmTMB(formula, data = data, family = nbinom2(link = "log"))
  obj <- t$obj; p0 <- t$fit$par; pn <- names(p0)
  o <- nlminb(p0, obj$fn, obj$gr, control = list(rel.tol = 1e-14, eval.max = 2000, iter.max = 2000))
  sd <- sdreport(obj, par.fixed = o$par)
  est <- sd$par.fixed; V <- sd$cov.fixed
  ib <- which(pn == "beta"); it <- which(pn == "theta"); id <- which(pn == "betad")
  vars <- exp(2 * est[it]); theta <- exp(est[id])
  list(call = paste(deparse(formula), collapse = ""), family = "nbinom2", link = "log", nobs = nrow(data),
       fixef = named_list(setNames(est[ib], names(fixef(t)$cond))),
       fixef_se = named_list(setNames(sqrt(diag(V)[ib]), names(fixef(t)$cond))),
       variances = named_list(setNames(vars, terms)),
       variances_se = named_list(setNames(2 * vars * sqrt(diag(V)[it]), terms)),
       theta = theta, theta_se = theta * sqrt(V[id, id]), log_theta_se = sqrt(V[id, id]),
       logLik = -o$objective, logLik_df = length(est),
       polish = list(message = o$message, max_abs_gradient_before = max(abs(obj$gr(p0))),
                     max_abs_gradient = max(abs(obj$gr(o$par))), pdHess = sd$pdHess,
                     logLik_as_fitted = as.numeric(logLik(t))))
}

res <- list(created = format(Sys.time(), "%Y-%m-%d"), generator = "tests/reference/glmm_negbin.R",
            versions = list(R = R.version.string, glmmTMB = as.character(packageVersion("glmmTMB")),
                            TMB = as.character(packageVersion("TMB"))))

## ---- Owls ---------------------------------------------------------------------------------
owls <- glmmTMB::Owls
owls <- data.frame(Nest = as.character(owls$Nest), FoodTreatment = as.character(owls$FoodTreatment),
                   BroodSize = owls$BroodSize, NCalls = owls$SiblingNegotiation)
write.csv(owls, file.path(out_dir, "glmm_owls.csv"), row.names = FALSE)
res$owls <- fit_case(NCalls ~ FoodTreatment + offset(log(BroodSize)) + (1 | Nest), owls, "Nest")

## ---- simulated crossed trial ----------------------------------------------------------------
set.seed(8128)
truth <- list(intercept = log(4), trial = c(T1 = 0, T2 = 0.3, T3 = -0.2), block = 0.1, mother = 0.2, theta = 2.5)
trials <- names(truth$trial)
sim <- expand.grid(tree = 1:12, Mother = sprintf("M%02d", 1:80), Trial = trials, stringsAsFactors = FALSE)
sim$Block <- sprintf("B%d", (sim$tree - 1) %% 5 + 1)
sim$TrialBlock <- paste(sim$Trial, sim$Block, sep = ":")
ub <- setNames(rnorm(15, 0, sqrt(truth$block)), unique(sim$TrialBlock))
um <- setNames(rnorm(80, 0, sqrt(truth$mother)), sprintf("M%02d", 1:80))
eta <- truth$intercept + truth$trial[sim$Trial] + ub[sim$TrialBlock] + um[sim$Mother]
sim$count <- rnbinom(nrow(sim), mu = exp(eta), size = truth$theta)
sim <- sim[, c("Trial", "Block", "TrialBlock", "Mother", "count")]
write.csv(sim, file.path(out_dir, "glmm_negbin_sim.csv"), row.names = FALSE)
res$sim_crossed <- fit_case(count ~ Trial + (1 | TrialBlock) + (1 | Mother), sim, c("TrialBlock", "Mother"))
res$sim_crossed$truth <- list(fixef = c("(Intercept)" = truth$intercept, TrialT2 = 0.3, TrialT3 = -0.2),
                              variances = list(TrialBlock = truth$block, Mother = truth$mother), theta = truth$theta)

## the same data fitted as Poisson: the logLik an LRT of theta (on its boundary) compares with
tp <- glmmTMB(count ~ Trial + (1 | TrialBlock) + (1 | Mother), data = sim, family = poisson)
res$sim_crossed$poisson_logLik <- as.numeric(logLik(tp))

writeLines(toJSON(res, auto_unbox = TRUE, digits = NA, pretty = TRUE), file.path(out_dir, "glmm_negbin.json"))
cat(sprintf("owls: logLik %.6f theta %.6f; sim: logLik %.6f theta %.6f\n", res$owls$logLik, res$owls$theta,
            res$sim_crossed$logLik, res$sim_crossed$theta))
