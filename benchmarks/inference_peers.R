## inference_peers.R -- time R's Wald tests and predictions of model m2 (for benchmarks/inference.py).
##
## Usage: Rscript benchmarks/inference_peers.R DATA.csv [--timeout SECONDS] [--memory-gib GIB] [--out OUT.json]
##   DATA.csv  columns Trial, Block (numbered within trial), Mother and dbh; Trial, Block and
##             Mother are read as factors.
##   --timeout     each step's limit in wall seconds (default 300)
##   --memory-gib  each step's address-space limit (ulimit -v, default 12) so that a step that
##                 asks for more fails with R's "cannot allocate vector" instead of swapping or
##                 being killed by the kernel with the rest of the machine
##   --out         also write the JSON there
##
## Steps, each in its own child Rscript under `timeout` (so one that does not finish is reported
## as "did not finish within N s", and one that fails by its error message, instead of hanging
## the run); after "fit" every step starts from the fitted model saved by it (readRDS, not timed):
##   fit      lmerTest::lmer(dbh ~ Trial + (1|Trial:Block) + (1|Mother) + (1|Trial:Mother), REML = TRUE),
##            timed in its two parts as lmerTest::lmer runs them: lme4::lmer (the REML fit) and
##            lmerTest's as_lmerModLT (numerical Hessian of the deviance in the variance
##            parameters and Jacobian of vcov(beta), which every Satterthwaite df uses).  A
##            warm-up fit on the first two trials runs first (not timed); reading the CSV is not timed.
##   sat      anova(m, type = 1, ddf = "Satterthwaite")      (lmerTest)
##   kr       anova(m, type = 1, ddf = "Kenward-Roger")      (lmerTest calling pbkrtest::vcovAdj)
##   emm_kr   emmeans(m, ~ Trial, lmer.df = "kenward-roger", pbkrtest.limit = Inf), pairs(adjust = "none"),
##            both summarised (the df are computed there)
##   emm_sat  the same with lmer.df = "satterthwaite", lmerTest.limit = Inf
## The only fixed term is Trial, so lmerTest's type 1 (Trial after the intercept) and type 3
## test the same hypothesis (all trial means equal) and give the same F; the anova steps report
## Trial's NumDF, DenDF and F.  When pbkrtest fails, lmerTest's anova warns and gives Satterthwaite's
## test instead: "kr" then reports status "error" with pbkrtest's message (and the seconds until then).
## emmeans's default limits (3,000 records) would silently switch the
## df off on these data; they are lifted here.  When "kr" does not finish within the limit,
## "emm_kr" (which needs the same pbkrtest::vcovAdj) is not run, to keep the run short.
##
## Output: one line "PEERS_JSON {...}" on stdout: versions, nobs, the limits and one object per
## step (status "ok" | "timeout" | "error" | "skipped", seconds, message, results).

args <- commandArgs(trailingOnly = TRUE)
opt <- function(name, default) {
  i <- match(name, args)
  if (is.na(i)) default else args[i + 1]
}
if (length(args) < 1 || startsWith(args[1], "--"))
  stop("usage: Rscript inference_peers.R DATA.csv [--timeout S] [--memory-gib G] [--out OUT.json]")
csv <- normalizePath(args[1])
step <- opt("--step", NULL)

suppressPackageStartupMessages({
  library(lme4)
  library(lmerTest)
  library(jsonlite)
})

form <- dbh ~ Trial + (1 | Trial:Block) + (1 | Mother) + (1 | Trial:Mother)

read_data <- function() {
  dat <- read.csv(csv)
  for (v in c("Trial", "Block", "Mother")) dat[[v]] <- factor(dat[[v]])
  dat
}

## lmerTest::lmer's body (lmerTest 3.1), with its two parts timed separately
fit_lmertest <- function(dat) {
  t1 <- system.time(model <- lme4::lmer(form, data = dat, REML = TRUE))[["elapsed"]]
  t2 <- system.time({
    devfun <- lme4::lmer(form, data = dat, REML = TRUE, devFunOnly = TRUE,
                         control = lme4::lmerControl(check.rankX = "silent.drop.cols"))
    m <- lmerTest:::as_lmerModLT(model, devfun)
  })[["elapsed"]]
  list(m = m, lme4 = t1, lmertest = t2)
}

trial_row <- function(a) {
  r <- a["Trial", ]
  list(NumDF = r[["NumDF"]], DenDF = r[["DenDF"]], F = r[["F value"]])
}

emm_step <- function(m, df) {
  suppressPackageStartupMessages(library(emmeans))
  secs <- system.time({
    e <- if (df == "kenward-roger") emmeans(m, ~ Trial, lmer.df = df, pbkrtest.limit = Inf)
         else emmeans(m, ~ Trial, lmer.df = df, lmerTest.limit = Inf)
    se <- summary(e)
    p <- summary(pairs(e, adjust = "none"))
  })[["elapsed"]]
  list(seconds = secs, results = list(
    n_pairs = nrow(p), mean_sed = mean(p$SE), min_sed = min(p$SE), max_sed = max(p$SE),
    mean_se = mean(se$SE), df_min = min(p$df), df_max = max(p$df)))
}

## ---- child: one step ---------------------------------------------------------------------
if (!is.null(step)) {
  out <- opt("--out", NULL)
  rds <- opt("--model", NULL)
  res <- switch(step,
    fit = {
      dat <- read_data()
      warm <- droplevels(dat[dat$Trial %in% levels(dat$Trial)[1:2], ])
      invisible(suppressMessages(suppressWarnings(fit_lmertest(warm))))
      rm(warm)
      invisible(gc())
      warns <- character(0)
      f <- withCallingHandlers(fit_lmertest(dat), warning = function(w) {
        warns <<- c(warns, trimws(conditionMessage(w))); invokeRestart("muffleWarning")
      }, message = function(w) {
        warns <<- c(warns, trimws(conditionMessage(w))); invokeRestart("muffleMessage")
      })
      saveRDS(f$m, rds, compress = FALSE)
      list(seconds = f$lme4 + f$lmertest, results = list(
        lme4_seconds = f$lme4, lmertest_seconds = f$lmertest, logLik = as.numeric(logLik(f$m)),
        converged = length(f$m@optinfo$conv$lme4$messages) == 0, warnings = as.list(unique(warns)),
        varcomp = as.list(setNames(as.data.frame(VarCorr(f$m))$vcov, as.data.frame(VarCorr(f$m))$grp))))
    },
    sat = {
      m <- readRDS(rds)
      secs <- system.time(a <- anova(m, type = 1, ddf = "Satterthwaite"))[["elapsed"]]
      list(seconds = secs, results = trial_row(a))
    },
    kr = {
      m <- readRDS(rds)
      warns <- character(0)
      secs <- system.time(a <- withCallingHandlers(anova(m, type = 1, ddf = "Kenward-Roger"), warning = function(w) {
        warns <<- c(warns, trimws(conditionMessage(w))); invokeRestart("muffleWarning")
      }))[["elapsed"]]
      if (any(grepl("Unable to compute Kenward-Roger", warns))) {
        ## lmerTest catches pbkrtest's error (try) and gives Satterthwaite's test instead; try()
        ## leaves pbkrtest's message in geterrmessage()
        list(status = "error", seconds = secs,
             message = sprintf("pbkrtest failed after %.1f s (%s); lmerTest then warns \"%s\" and gives Satterthwaite's F and df",
                               secs, gsub("\\s+", " ", trimws(geterrmessage())), warns[grepl("Kenward", warns)][1]),
             results = trial_row(a))
      } else list(seconds = secs, results = trial_row(a))
    },
    emm_kr = emm_step(readRDS(rds), "kenward-roger"),
    emm_sat = emm_step(readRDS(rds), "satterthwaite"),
    stop("unknown step: ", step))
  writeLines(toJSON(res, auto_unbox = TRUE, digits = NA), out)
  quit(save = "no", status = 0)
}

## ---- driver: every step in a child Rscript under timeout and ulimit -v -----------------------
timeout <- as.numeric(opt("--timeout", "300"))
memory_gib <- as.numeric(opt("--memory-gib", "12"))
out_all <- opt("--out", NULL)
script <- normalizePath(sub("^--file=", "", grep("^--file=", commandArgs(FALSE), value = TRUE)[1]))
tmp <- tempfile("inference_peers_")
dir.create(tmp)
rds <- file.path(tmp, "model.rds")
nobs <- length(readLines(csv)) - 1L

run_step <- function(name) {
  out <- file.path(tmp, paste0(name, ".json"))
  err <- file.path(tmp, paste0(name, ".err"))
  cmd <- sprintf("ulimit -v %.0f; exec timeout %.0f Rscript %s %s --step %s --model %s --out %s 2>%s >/dev/null",
                 memory_gib * 1024^2, timeout, shQuote(script), shQuote(csv), name, shQuote(rds),
                 shQuote(out), shQuote(err))
  t0 <- Sys.time()
  status <- system2("bash", c("-c", shQuote(cmd)))
  wall <- as.numeric(difftime(Sys.time(), t0, units = "secs"))
  if (status == 0 && file.exists(out)) {
    r <- fromJSON(out, simplifyVector = FALSE)
    if (is.null(r$status)) r$status <- "ok"
    return(r)
  }
  if (status == 124) {
    return(list(status = "timeout", message = sprintf("did not finish within %.0f s", timeout), wall = wall))
  }
  msg <- if (file.exists(err)) readLines(err, warn = FALSE) else character(0)
  msg <- trimws(msg[nzchar(trimws(msg))])
  ## R's error: from the line starting "Error" up to "Calls:" / "Timing stopped" / "Execution halted"
  first <- grep("^Error", msg)
  if (length(first)) {
    rest <- msg[first[1]:length(msg)]
    end <- grep("^(Calls:|Timing stopped|Execution halted|In addition)", rest)
    rest <- if (length(end)) rest[seq_len(end[1] - 1)] else rest
    text <- paste(rest, collapse = " ")
  } else text <- paste(tail(msg, 3), collapse = " ")
  if (!nzchar(text)) text <- sprintf("exit status %d", status)
  list(status = "error", message = substr(text, 1, 300), wall = wall)
}

steps <- list()
steps$fit <- run_step("fit")
for (name in c("sat", "kr", "emm_kr", "emm_sat")) {
  if (steps$fit$status != "ok") {
    steps[[name]] <- list(status = "skipped", message = "the fit did not finish")
  } else if (name == "emm_kr" && steps$kr$status == "timeout") {
    steps[[name]] <- list(status = "skipped",
                          message = sprintf("not run: pbkrtest's vcovAdj did not finish within %.0f s in anova", timeout))
  } else {
    steps[[name]] <- run_step(name)
  }
}
unlink(tmp, recursive = TRUE)

res <- list(
  R = paste(R.version$major, R.version$minor, sep = "."),
  versions = lapply(setNames(nm = c("lme4", "lmerTest", "pbkrtest", "emmeans", "Matrix")),
                    function(p) as.character(packageVersion(p))),
  nobs = nobs, timeout = timeout, memory_gib = memory_gib, steps = steps)
line <- toJSON(res, auto_unbox = TRUE, digits = NA)
if (!is.null(out_all)) writeLines(line, out_all)
cat("PEERS_JSON", line, "\n")
