## families_peers.R -- lme4 peer of benchmarks/families.py (issue 17): the "overlay" model
##   dbh ~ Trial, random Trial:Block + Mother + and(Father) + sca(Mother, Father) + at(Type, clone):Clone
## fitted by REML with lme4 on hand-built Z matrices (as in tests/reference/overlay.R).
##
## Usage: Rscript benchmarks/families_peers.R DATA.csv [VARIANCES.json]
##   DATA.csv  columns Trial, Block (numbered within trial), Mother, Father (integers; Father 0 =
##             unknown, open pollination), Type ("half-sib", "full-sib", "clone"), Clone, dbh
## Prints one JSON line: seconds (system.time, elapsed, of lFormula .. mkMerMod), seconds spent
## building the hand-made Z matrices (not in "seconds"), logLik (REML, lme4 convention),
## variances, evaluations, convergence messages.  With VARIANCES.json (another fit's variances, keys
## GCA, SCA, CLN, Trial:Block, Residual), also logLik_at_given: lme4's own REML logLik (-devfun / 2,
## profiled over the residual variance) at theta = sqrt(variance / residual), i.e. at the other
## fit's estimates -- whether the two programs fit the same likelihood, and which optimum is higher.
##
## The three hand-built terms, each declared (1 | name) on a placeholder factor that carries
## every level (lme4 drops unused levels; the placeholder's row assignment is irrelevant because
## the term's Zt rows are replaced):
##   GCA  overlay on the union of mothers and fathers: Z[i, Mother] += 1, Z[i, Father] += 1
##        (Father 0 adds nothing; a self would get 2)
##   SCA  one level per unordered pair {Mother, Father}; rows with Father 0 are zero
##   CLN  one level per clone id; rows only for Type == "clone"
## Zt is rebuilt as rbind of the terms' Ztlist, as lme4's mkReTrms does.  The optimizer and its
## settings are lmer's defaults (lmerControl(): nloptwrap, derivatives for the convergence check),
## so the time is what lmer would take on this model.  A warm-up fit on the first two trials runs
## first (not timed), as in benchmarks/peers.R.

suppressPackageStartupMessages({
  library(lme4)
  library(Matrix)
  library(jsonlite)
})

args <- commandArgs(trailingOnly = TRUE)
if (!length(args) %in% 1:2) stop("usage: Rscript families_peers.R DATA.csv [VARIANCES.json]")
dat <- read.csv(args[1], stringsAsFactors = FALSE)
dat$Trial <- factor(dat$Trial)
dat$Block <- factor(dat$Block)

one_hot <- function(rows, key, n) {
  lev <- sort(unique(key))
  sparseMatrix(i = rows, j = match(key, lev), x = 1, dims = c(n, length(lev)), dimnames = list(NULL, lev))
}

build_z <- function(d) {
  n <- nrow(d)
  m <- d$Mother; f <- d$Father; has_f <- f != 0
  lev <- sort(unique(c(m, f[has_f])))
  gca <- sparseMatrix(i = c(seq_len(n), which(has_f)), j = c(match(m, lev), match(f[has_f], lev)),
                      x = 1, dims = c(n, length(lev)), dimnames = list(NULL, as.character(lev)))   # duplicates summed
  pair <- paste(pmin(m, f), pmax(m, f), sep = "x")[has_f]
  sca <- one_hot(which(has_f), pair, n)
  is_clone <- d$Type == "clone"
  cln <- one_hot(which(is_clone), d$Clone[is_clone], n)
  list(GCA = gca, SCA = sca, CLN = cln)
}

form <- dbh ~ Trial + (1 | Trial:Block) + (1 | GCA) + (1 | SCA) + (1 | CLN)

fit <- function(d, Z) {
  for (nm in names(Z)) {
    lev <- colnames(Z[[nm]])
    d[[nm]] <- factor(rep_len(lev, nrow(d)), levels = lev)
  }
  ctrl <- lmerControl()
  lf <- lFormula(form, data = d, REML = TRUE, control = ctrl)
  rt <- lf$reTrms
  for (nm in names(Z)) {
    k <- which(names(rt$cnms) == nm)
    stopifnot(length(k) == 1, identical(levels(rt$flist[[nm]]), colnames(Z[[nm]])))
    rt$Ztlist[[k]] <- as(t(Z[[nm]]), "CsparseMatrix")
  }
  rt$Zt <- as(do.call(rbind, rt$Ztlist), "CsparseMatrix")
  stopifnot(identical(dim(rt$Zt), dim(lf$reTrms$Zt)))
  lf$reTrms <- rt
  devfun <- do.call(mkLmerDevfun, c(lf, list(control = ctrl)))
  opt <- optimizeLmer(devfun, optimizer = ctrl$optimizer, restart_edge = ctrl$restart_edge,
                      boundary.tol = ctrl$boundary.tol, control = ctrl$optCtrl,
                      calc.derivs = ctrl$calc.derivs, use.last.params = ctrl$use.last.params)
  cc <- checkConv(attr(opt, "derivs"), opt$par, ctrl = ctrl$checkConv, lbound = environment(devfun)$lower)
  list(m = mkMerMod(environment(devfun), opt, lf$reTrms, fr = lf$fr, lme4conv = cc), devfun = devfun,
       terms = names(rt$cnms))
}

warm <- droplevels(dat[dat$Trial %in% levels(dat$Trial)[1:2], ])
invisible(suppressMessages(suppressWarnings(fit(warm, build_z(warm)))))
rm(warm)
invisible(gc())

z_secs <- system.time(Z <- build_z(dat))[["elapsed"]]
warns <- character(0)
note <- function(restart) function(w) {
  warns <<- c(warns, trimws(conditionMessage(w))); invokeRestart(restart)
}
secs <- system.time(f <- withCallingHandlers(fit(dat, Z), warning = note("muffleWarning"),
                                             message = note("muffleMessage")))[["elapsed"]]
m <- f$m
vc <- as.data.frame(VarCorr(m))    # before devfun is evaluated again below: it moves the shared theta
ll <- as.numeric(logLik(m))
at_given <- NULL
if (length(args) == 2) {
  given <- fromJSON(args[2])
  theta <- sqrt(unlist(given[f$terms]) / given$Residual)
  at_given <- -f$devfun(unname(theta)) / 2
}

res <- list(
  tool = "lme4", version = as.character(packageVersion("lme4")),
  R = paste(R.version$major, R.version$minor, sep = "."),
  nobs = nrow(dat), seconds = secs, z_seconds = z_secs,
  logLik = ll,
  logLik_at_given = at_given,
  variances = setNames(as.list(vc$vcov), vc$grp),
  levels = lapply(Z, ncol),
  evaluations = m@optinfo$feval,
  converged = length(m@optinfo$conv$lme4$messages) == 0,
  messages = as.list(unique(c(warns, m@optinfo$conv$lme4$messages)))
)
cat(toJSON(res, auto_unbox = TRUE, digits = NA), "\n")
