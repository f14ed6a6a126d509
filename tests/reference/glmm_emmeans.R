## glmm_emmeans.R -- emmeans predictions of GLMMs on the link and response scales (issue 18).
##
## emmeans (delta method for type = "response") on glmmTMB fits, whose fixed-effect covariance
## is the inverse observed information of (theta, beta), as sparsereml's Laplace fits:
##   cbpp:    cbind(incidence, size - incidence) ~ period + (1 | herd), binomial logit; ~ period
##   progeny: surv ~ Trial + (1 | Trial:Block) + (1 | Mother), binomial probit; ~ Trial
## Data: tests/reference/glmm_cbpp.csv, glmm_progeny.csv (see glmm.R).
## Run from the repository root: Rscript tests/reference/glmm_emmeans.R -> glmm_emmeans.json
suppressMessages({library(glmmTMB); library(emmeans); library(jsonlite)})
one <- function(fit, spec) {
  link <- as.data.frame(emmeans(fit, spec))
  resp <- as.data.frame(emmeans(fit, spec, type = "response"))
  pr <- as.data.frame(pairs(regrid(emmeans(fit, spec)), adjust = "none"))
  list(levels = as.character(link[[1]]), link = link$emmean, link_se = link$SE,
       response = resp[[2]], response_se = resp$SE,
       pairs = list(contrast = as.character(pr$contrast), estimate = pr[[2]], se = pr$SE))
}
d <- read.csv("tests/reference/glmm_cbpp.csv"); d$herd <- factor(d$herd); d$period <- factor(d$period)
cbpp <- glmmTMB(cbind(incidence, size - incidence) ~ period + (1 | herd), d, family = binomial)
p <- read.csv("tests/reference/glmm_progeny.csv")
for (v in c("Trial", "Block", "Mother")) p[[v]] <- factor(p[[v]])
prog <- glmmTMB(surv ~ Trial + (1 | Trial:Block) + (1 | Mother), p, family = binomial(link = "probit"))
out <- list(generator = "tests/reference/glmm_emmeans.R",
            versions = list(R = R.version.string, glmmTMB = as.character(packageVersion("glmmTMB")),
                            emmeans = as.character(packageVersion("emmeans"))),
            note = "pairs: differences on the response scale (ratios are not used: regrid before pairs)",
            cbpp_logit = one(cbpp, ~ period), progeny_probit = one(prog, ~ Trial))
write(toJSON(out, digits = NA, auto_unbox = TRUE, pretty = TRUE), "tests/reference/glmm_emmeans.json")
