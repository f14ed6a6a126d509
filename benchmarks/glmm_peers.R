## glmm_peers.R -- one R peer fit of a binary GLMM for benchmarks/glmm.py (issue 18).
##
## Usage: Rscript benchmarks/glmm_peers.R DATA.csv TOOL MODEL LINK OUT.json [PEDIGREE.csv]
##   DATA.csv      columns Trial, Block (numbered within trial), Mother (integers) and survival (0/1)
##   TOOL          glmer    lme4::glmer, nAGQ = 1 (the Laplace approximation), glmerControl() defaults
##                          (bobyqa on theta with nAGQ = 0, then Nelder_Mead on (theta, beta) with
##                          nAGQ = 1, then the finite-difference gradient and Hessian that the
##                          convergence check uses -- calc.derivs = TRUE is glmer's default)
##                 glmerb   lme4::glmer, nAGQ = 1 with the settings of lme4's performance vignette (lmerperf) for
##                          large models: glmerControl(optimizer = "bobyqa", calc.derivs = FALSE)
##                          (bobyqa in both stages, no finite-difference derivatives afterwards)
##                 glmer0   lme4::glmer, nAGQ = 0: beta inside PIRLS, only theta optimised; NOT the
##                          Laplace fit (its logLik is at estimates that do not maximise it)
##                 glmmTMB  glmmTMB::glmmTMB, ML, Laplace (observed information), default control
##   MODEL         mother   survival ~ Trial + (1 | Trial:Block) + (1 | Mother)
##                 vm       survival ~ Trial + (1 | Trial:Block) + (1 | vm), vm's effects ~ N(0, s2 A),
##                          A from PEDIGREE.csv (columns id, sire, dam; "0" unknown; parents before
##                          offspring; mother m is "M<m>")
##   LINK          probit | logit (binomial)
##
## vm: neither lme4 nor glmmTMB (1.1.5) takes a known covariance matrix, so the pedigree term is
## hand-built, as pedigreemm does it: A = L L' with L = T D^(1/2) (T the ancestor matrix, D the
## Mendelian-sampling variances: Henderson's decomposition, which is A's Cholesky factor in
## pedigree order and sparse: a mother's row has herself and her ancestors), one level per
## pedigree individual (grandparents included, as sparsereml's vm()), and the term's Z is
## Z_individual %*% L (at most 3 non-zeros a row here).  The term is declared (1 | vm) on a
## placeholder factor that carries every pedigree id (its row assignment is irrelevant: the term's
## rows of Zt are replaced).  lme4: glFormula, the replacement, then glmer's own body
## (mkGlmerDevfun, optimizeGlmer stage 1 and 2, checkConv, mkMerMod; the same calls and control as
## glmer(), lme4 1.1.31).  glmmTMB: glmmTMB(doFit = FALSE), the replacement in data.tmb$Z, fitTMB.
## The Laplace likelihood is invariant to the linear change of variables, so logLik is that of
## b ~ N(0, s2 A).  The MODEL = mother fits use the same code path with Z left alone (so both
## models are timed alike); glmer(...) itself gives the same fit (checked on small networks).
##
## Timing: reading the CSV, building A and L (reported as "z_seconds") and a warm-up fit (the
## first 3,000 records, without the Trial effects) are not timed; OUT.json.started is written just
## before the timed fit starts (so that a caller's time-out can tell how long the fit ran); the
## timed fit is system.time (elapsed) of the formula processing to the fitted model.  For glmer the stages are timed too: "setup" (glFormula + devfun),
## "stage1" (nAGQ = 0 optimisation), "stage2" (nAGQ = 1 optimisation + derivatives for the
## convergence check).  The caller imposes the time limit (timeout).
## Output: one JSON object in OUT.json (and on stdout): tool, versions, seconds, stages, logLik
## (ML, constants included: comparable with sparsereml's m.loglik), variances, fixed effects,
## evaluations, convergence messages.

suppressPackageStartupMessages({
  library(lme4)
  library(glmmTMB)
  library(Matrix)
  library(jsonlite)
})

args <- commandArgs(trailingOnly = TRUE)
if (!length(args) %in% 5:6) stop("usage: Rscript glmm_peers.R DATA.csv TOOL MODEL LINK OUT.json [PEDIGREE.csv]")
csv <- args[1]; tool <- args[2]; model <- args[3]; link <- args[4]; out <- args[5]
stopifnot(tool %in% c("glmer", "glmerb", "glmer0", "glmmTMB"), model %in% c("mother", "vm"), link %in% c("probit", "logit"))
if (model == "vm" && length(args) < 6) stop("MODEL vm needs PEDIGREE.csv")

dat <- read.csv(csv)
for (v in c("Trial", "Block", "Mother")) dat[[v]] <- factor(dat[[v]])
fam <- binomial(link = link)

## Henderson's L = T D^(1/2) of the pedigree (dense while built; ~1,200 individuals here)
pedigree_factor <- function(ped) {
  n <- nrow(ped)
  s <- match(ped$sire, ped$id); d <- match(ped$dam, ped$id)  # NA = unknown
  if (any(s >= seq_len(n), na.rm = TRUE) || any(d >= seq_len(n), na.rm = TRUE))
    stop("the pedigree must list parents before their offspring")
  Tm <- matrix(0, n, n); D <- numeric(n); F <- numeric(n)
  for (i in seq_len(n)) {
    row <- numeric(n)
    if (!is.na(s[i])) row <- row + 0.5 * Tm[s[i], ]
    if (!is.na(d[i])) row <- row + 0.5 * Tm[d[i], ]
    row[i] <- 1
    Tm[i, ] <- row
    D[i] <- if (!is.na(s[i]) && !is.na(d[i])) 0.5 - 0.25 * (F[s[i]] + F[d[i]])
            else if (!is.na(s[i])) 0.75 - 0.25 * F[s[i]]
            else if (!is.na(d[i])) 0.75 - 0.25 * F[d[i]]
            else 1
    F[i] <- sum(Tm[i, ]^2 * D) - 1                           # A_ii = 1 + F_i
  }
  L <- drop0(Matrix(sweep(Tm, 2, sqrt(D), "*"), sparse = TRUE), tol = 1e-14)
  dimnames(L) <- list(ped$id, ped$id)
  list(L = L, inbred = sum(F > 1e-12))
}

z_secs <- 0
L <- NULL
if (model == "vm") {
  ped <- read.csv(args[6], colClasses = "character")
  z_secs <- system.time(pf <- pedigree_factor(ped))[["elapsed"]]
  L <- pf$L
}

form <- if (model == "vm") survival ~ Trial + (1 | Trial:Block) + (1 | vm) else
  survival ~ Trial + (1 | Trial:Block) + (1 | Mother)

## the vm term's Z (records x pedigree ids) and the placeholder factor carrying every id
vm_z <- function(d) {
  ids <- rownames(L)
  Zi <- sparseMatrix(i = seq_len(nrow(d)), j = match(paste0("M", d$Mother), ids), x = 1,
                     dims = c(nrow(d), length(ids)))
  stopifnot(!anyNA(match(paste0("M", d$Mother), ids)))
  list(Z = as(Zi %*% L, "CsparseMatrix"), ids = ids)
}
with_placeholder <- function(d) {
  if (model != "vm") return(list(d = d, Z = NULL))
  z <- vm_z(d)
  d$vm <- factor(rep_len(z$ids, nrow(d)), levels = z$ids)
  list(d = d, Z = z$Z)
}
replace_zt <- function(rt, Z) {   # lme4 reTrms: the vm term's rows of Zt
  k <- which(names(rt$cnms) == "vm")
  stopifnot(length(k) == 1, identical(levels(rt$flist[["vm"]]), colnames(L)))
  rt$Ztlist[[k]] <- as(t(Z), "CsparseMatrix")
  Zt <- as(do.call(rbind, rt$Ztlist), "CsparseMatrix")
  stopifnot(identical(dim(Zt), dim(rt$Zt)))
  rt$Zt <- Zt
  rt
}

stage <- c(setup = 0, stage1 = 0, stage2 = 0)
## glmer's body (lme4 1.1.31), with the vm term's Zt replaced after glFormula
fit_glmer <- function(d, nAGQ, control = glmerControl()) {
  p <- with_placeholder(d)
  t0 <- proc.time()[["elapsed"]]
  glmod <- glFormula(form, data = p$d, family = fam, control = control)
  if (!is.null(p$Z)) glmod$reTrms <- replace_zt(glmod$reTrms, p$Z)
  glmod$formula <- NULL
  devfun <- do.call(mkGlmerDevfun, c(glmod, list(verbose = 0L, control = control, nAGQ = 0L)))
  t1 <- proc.time()[["elapsed"]]
  opt <- optimizeGlmer(devfun, optimizer = control$optimizer[[1]],
                       restart_edge = if (nAGQ == 0) control$restart_edge else FALSE,
                       boundary.tol = if (nAGQ == 0) control$boundary.tol else 0,
                       control = control$optCtrl, start = NULL, nAGQ = 0, verbose = 0L, calc.derivs = FALSE)
  t2 <- proc.time()[["elapsed"]]
  if (nAGQ > 0L) {
    devfun <- updateGlmerDevfun(devfun, glmod$reTrms, nAGQ = nAGQ)
    start <- lme4:::updateStart(NULL, theta = opt$par)
    opt <- optimizeGlmer(devfun, optimizer = control$optimizer[[2]], restart_edge = control$restart_edge,
                         boundary.tol = control$boundary.tol, control = control$optCtrl, start = start,
                         nAGQ = nAGQ, verbose = 0L, stage = 2, calc.derivs = control$calc.derivs,
                         use.last.params = control$use.last.params)
  }
  t3 <- proc.time()[["elapsed"]]
  cc <- if (!control$calc.derivs) NULL else
    checkConv(attr(opt, "derivs"), opt$par, ctrl = control$checkConv, lbound = environment(devfun)$lower)
  m <- mkMerMod(environment(devfun), opt, glmod$reTrms, fr = glmod$fr, lme4conv = cc)
  stage[] <<- c(t1 - t0, t2 - t1, t3 - t2)
  m
}

fit_tmb <- function(d) {
  p <- with_placeholder(d)
  s <- glmmTMB(form, data = p$d, family = fam, doFit = FALSE)
  if (!is.null(p$Z)) {
    rt <- s$condList$reTrms
    k <- which(names(rt$cnms) == "vm")
    stopifnot(length(k) == 1, identical(levels(rt$flist[["vm"]]), colnames(L)))
    cols <- (rt$Gp[k] + 1):rt$Gp[k + 1]
    Z <- s$data.tmb$Z
    stopifnot(length(cols) == ncol(p$Z), nrow(Z) == nrow(p$Z))
    Z <- cbind(Z[, seq_len(rt$Gp[k]), drop = FALSE], p$Z, Z[, -seq_len(rt$Gp[k + 1]), drop = FALSE])
    s$data.tmb$Z <- as(Z, class(s$data.tmb$Z))
  }
  fitTMB(s)
}

fit_one <- switch(tool, glmer = function(d) fit_glmer(d, 1L),
                  glmerb = function(d) fit_glmer(d, 1L, glmerControl(optimizer = "bobyqa", calc.derivs = FALSE)),
                  glmer0 = function(d) fit_glmer(d, 0L), glmmTMB = fit_tmb)

## warm-up (loads and byte-compiles the code the timed fit runs): the same tool and model on the
## first 3,000 records without the fixed Trial effects (a handful of parameters: seconds, even for
## glmer's Nelder-Mead, whose 33 parameters would make a warm-up on two trials take minutes)
warm <- droplevels(dat[seq_len(min(3000, nrow(dat))), ])
form_timed <- form
form <- update(form, . ~ . - Trial)
invisible(suppressMessages(suppressWarnings(fit_one(warm))))
form <- form_timed
rm(warm)
invisible(gc())

warns <- character(0)
note <- function(restart) function(w) {
  warns <<- c(warns, trimws(conditionMessage(w))); invokeRestart(restart)
}
writeLines(format(Sys.time(), "%Y-%m-%dT%H:%M:%OS3"), paste0(out, ".started"))  # for the caller's time-out
secs <- system.time(m <- withCallingHandlers(fit_one(dat), warning = note("muffleWarning"),
                                             message = note("muffleMessage")))[["elapsed"]]

label <- c("Trial:Block" = "Trial:Block", Mother = "Mother", vm = "vm(MotherId, ped)")
if (tool == "glmmTMB") {
  vc <- VarCorr(m)$cond
  variances <- lapply(vc, function(v) as.numeric(v[1, 1]))
  fixed <- fixef(m)$cond
  evaluations <- m$fit$evaluations
  conv <- list(code = m$fit$convergence, message = m$fit$message)
  msgs <- unique(c(warns, if (m$fit$convergence != 0) m$fit$message))
  version <- as.character(packageVersion("glmmTMB"))
} else {
  vc <- as.data.frame(VarCorr(m))
  variances <- setNames(as.list(vc$vcov), vc$grp)
  fixed <- fixef(m)
  evaluations <- m@optinfo$feval
  conv <- list(code = m@optinfo$conv$opt, messages = m@optinfo$conv$lme4$messages)
  msgs <- unique(c(warns, m@optinfo$conv$lme4$messages))
  version <- as.character(packageVersion("lme4"))
}
names(variances) <- label[names(variances)]

res <- list(
  tool = tool, version = version, R = paste(R.version$major, R.version$minor, sep = "."),
  model = model, link = link, nobs = nrow(dat),
  seconds = secs, stages = if (tool == "glmmTMB") NULL else as.list(stage), z_seconds = z_secs,
  logLik = as.numeric(logLik(m)), variances = variances, fixed = as.list(fixed),
  evaluations = evaluations, convergence = conv, messages = as.list(msgs),
  inbred = if (model == "vm") pf$inbred else NULL
)
txt <- toJSON(res, auto_unbox = TRUE, digits = NA, null = "null")
writeLines(txt, out)
cat(txt, "\n")
