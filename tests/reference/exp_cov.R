## ---------------------------------------------------------------------------
## exp_cov.R -- REML reference numbers for the exponential covariance model
## exp(Pos) across the numeric positions of a factor (sparsereml's exp(),
## ASReml's exp()), fitted with glmmTMB.
##
## Rerun (from the repository root; a few seconds):
##   Rscript tests/reference/exp_cov.R tests/reference/exp_cov.csv tests/reference/exp_cov.json
##
## Data (simulated here, set.seed(14), written to the CSV):
##   60 sites, each measured at the unequally spaced positions
##   Pos = 0, 1, 2.5, 4, 7, 8, twice per position (720 records).
##   y = 10 + u[Site, Pos] + e,  u[Site, ] ~ N(0, s2 * phi^|x_i - x_j|) with
##   s2 = 2, phi = 0.7 (correlation per unit distance); e ~ N(0, 1).
##
## Model (REML): glmmTMB(y ~ 1 + exp(pos + 0 | Site), REML = TRUE) with
##   pos = numFactor(Pos); glmmTMB's exp() is Sigma_ij = s^2 exp(-d_ij / theta),
##   so phi = exp(-1 / theta).  phi is read off the fitted correlation matrix
##   (glmmTMB 1.1.5 keeps theta = (log s, log theta_scale) and betad = log of the
##   residual variance; "parametrisation_check" is the largest difference between
##   these and VarCorr()/sigma() of the nlminb fit, every correlation included).
##   Optimisation: nlminb (rel.tol 1e-14), then Newton steps on TMB's REML
##   objective until the gradient is below 1e-8.
## ---------------------------------------------------------------------------
suppressPackageStartupMessages({library(glmmTMB); library(jsonlite)})
args <- commandArgs(trailingOnly = TRUE)
csv <- if (length(args) >= 1) args[1] else "exp_cov.csv"
out <- if (length(args) >= 2) args[2] else "exp_cov.json"

set.seed(14)
sites <- sprintf("S%02d", 1:60)
x <- c(0, 1, 2.5, 4, 7, 8)
Sigma <- 2 * 0.7^abs(outer(x, x, "-"))
L <- t(chol(Sigma))
u <- t(L %*% matrix(rnorm(length(x) * length(sites)), length(x)))  # sites x positions
d <- expand.grid(rep = 1:2, Pos = x, Site = sites, stringsAsFactors = FALSE)
d <- d[, c("Site", "Pos", "rep")]
d$y <- round(10 + u[cbind(match(d$Site, sites), match(d$Pos, x))] + rnorm(nrow(d)), 6)
write.csv(d, csv, row.names = FALSE)

d <- read.csv(csv)
d$Site <- factor(d$Site)
d$pos <- numFactor(d$Pos)
ctl <- glmmTMBControl(optCtrl = list(iter.max = 1e4, eval.max = 1e4, rel.tol = 1e-14))
m <- glmmTMB(y ~ 1 + exp(pos + 0 | Site), data = d, REML = TRUE, control = ctl)
# polish: Newton steps on the REML objective
obj <- m$obj
p <- obj$par
for (i in 1:20) {
  g <- obj$gr(p)
  if (max(abs(g)) < 1e-8) break
  H <- optimHess(p, obj$fn, obj$gr)
  p <- p - solve(H, as.numeric(g))
}
# glmmTMB 1.1.5's parameters: betad = log(residual variance), theta = (log s, log theta_scale);
# checked against VarCorr of the nlminb fit (its correlation matrix and stddev)
par_values <- function(q) {
  th <- q[names(q) == "theta"]
  list(var = exp(2 * th[1]), phi = exp(-1 / exp(th[2])), residual = exp(q[names(q) == "betad"]))
}
vc <- VarCorr(m)$cond$Site
R <- attr(vc, "correlation")
D <- abs(outer(x, x, "-"))
off <- D > 0
at_nlminb <- par_values(m$fit$par)
check <- c(var = abs(mean(attr(vc, "stddev")^2) - at_nlminb$var),
           phi = max(abs(R[off] - at_nlminb$phi^D[off])),
           residual = abs(sigma(m)^2 - at_nlminb$residual))
stopifnot(all(check < 1e-10))
v <- par_values(p)
res <- list(
  created = format(Sys.time(), tz = "UTC", usetz = TRUE),
  versions = list(R = R.version.string, glmmTMB = as.character(packageVersion("glmmTMB")),
                  TMB = as.character(packageVersion("TMB"))),
  nobs = nrow(d), checksum_y = sum(d$y),
  logLik_REML = -as.numeric(obj$fn(p)),
  logLik_nlminb = as.numeric(logLik(m)),
  max_abs_gradient = max(abs(obj$gr(p))),
  parametrisation_check = max(check),
  var = unname(v$var), phi = unname(v$phi), theta_scale = unname(exp(p[names(p) == "theta"][2])),
  residual = unname(v$residual)
)
writeLines(toJSON(res, auto_unbox = TRUE, digits = NA, pretty = TRUE), out)
print(res)
