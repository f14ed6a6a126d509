## peers.R -- time one R peer fit for benchmarks/trial_network.py.
##
## Usage: Rscript benchmarks/peers.R DATA.csv MODEL OUT.json
##   DATA.csv  columns Trial, Block (numbered within trial), Mother (integers) and dbh
##   MODEL     m2  -> lme4    lmer(dbh ~ Trial + (1|Trial:Block) + (1|Mother) + (1|Trial:Mother), REML = TRUE)
##             m2b -> glmmTMB the same, dispformula = ~ 0 + Trial (one residual variance per trial), REML = TRUE
##             fa2 -> glmmTMB dbh ~ Trial + diag(0 + Trial | Trial:Block) + rr(0 + Trial | Mother, d = 2)
##                    + diag(0 + Trial | Mother), dispformula = ~ 0 + Trial, REML = TRUE (factor analytic
##                    between trials: reduced rank plus specific variances; benchmarks/structures.py)
##
## Reading the CSV is not timed.  A small warm-up fit (first two trials) runs first, as the
## Python side does, then the timed fit with default settings (system.time, elapsed seconds).
## Memory: the kernel's peak-RSS mark is reset just before the timed fit (echo 5 >
## /proc/self/clear_refs, Linux >= 4.0), so VmHWM at the end is the peak during the fit,
## data included; VmRSS just before the fit is reported too.  If the reset is not
## possible, VmHWM is the process peak (CSV reading included) and "peak_is_fit_only" is false.
## Output: one JSON object (tool, versions, seconds, logLik (REML, lme4 convention), evaluations,
## convergence, warnings and messages of the timed fit, memory in KiB).

suppressPackageStartupMessages({
  library(lme4)
  library(glmmTMB)
  library(jsonlite)
})

args <- commandArgs(trailingOnly = TRUE)
if (length(args) != 3) stop("usage: Rscript peers.R DATA.csv MODEL OUT.json")
csv <- args[1]; model <- args[2]; out <- args[3]

status_kib <- function(field) {
  line <- grep(paste0("^", field, ":"), readLines("/proc/self/status"), value = TRUE)
  as.numeric(gsub("[^0-9]", "", line))
}

dat <- read.csv(csv)
for (v in c("Trial", "Block", "Mother")) dat[[v]] <- factor(dat[[v]])

form <- dbh ~ Trial + (1 | Trial:Block) + (1 | Mother) + (1 | Trial:Mother)
form_fa <- dbh ~ Trial + diag(0 + Trial | Trial:Block) + rr(0 + Trial | Mother, d = 2) + diag(0 + Trial | Mother)
fit_one <- switch(model,
  m2  = function(d) lmer(form, data = d, REML = TRUE),
  m2b = function(d) glmmTMB(form, dispformula = ~ 0 + Trial, data = d, REML = TRUE),
  fa2 = function(d) glmmTMB(form_fa, dispformula = ~ 0 + Trial, data = d, REML = TRUE),
  stop("unknown model: ", model))
tool <- if (model == "m2") "lme4" else "glmmTMB"

warm <- droplevels(dat[dat$Trial %in% levels(dat$Trial)[1:2], ])
invisible(suppressMessages(suppressWarnings(fit_one(warm))))
rm(warm)

invisible(gc())
reset <- tryCatch({ cat("5", file = "/proc/self/clear_refs"); TRUE }, error = function(e) FALSE)
rss_before <- status_kib("VmRSS")
warns <- character(0)
note <- function(restart) function(w) {
  warns <<- c(warns, trimws(conditionMessage(w))); invokeRestart(restart)
}
secs <- system.time(m <- withCallingHandlers(fit_one(dat), warning = note("muffleWarning"),
                                             message = note("muffleMessage")))[["elapsed"]]

if (tool == "lme4") {
  evaluations <- m@optinfo$feval
  converged <- length(m@optinfo$conv$lme4$messages) == 0
} else {
  evaluations <- m$fit$evaluations[["function"]]
  converged <- m$fit$convergence == 0 && isTRUE(m$sdr$pdHess)
}

res <- list(
  tool = tool, model = model,
  version = as.character(packageVersion(tool)),
  R = paste(R.version$major, R.version$minor, sep = "."),
  nobs = nrow(dat),
  seconds = secs,
  logLik = as.numeric(logLik(m)),
  evaluations = evaluations,
  converged = converged,
  warnings = as.list(unique(warns)),
  rss_before_kib = rss_before,
  peak_kib = status_kib("VmHWM"),
  peak_is_fit_only = reset
)
writeLines(toJSON(res, auto_unbox = TRUE, digits = NA), out)
