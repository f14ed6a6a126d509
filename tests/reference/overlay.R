## Reference values for the "overlay" random term (ASReml's `male + and(female)`),
## fitted by REML with lme4 on a hand-built Z.  Rerun from the repository root:
##   Rscript tests/reference/overlay.R
## which writes tests/reference/overlay.json and tests/reference/overlay_network.csv.
##
## Overlay term: Z = Z_a + w * Z_b on ONE set of parent levels (the union of the levels of
## both columns, so a parent seen only in the second column still gets a column); a record
## whose two parents are the same level gets 1 + w (2 for w = 1: selfing) in that column;
## a record whose second parent is missing (NA or "0") gets only the first parent's 1.
##
## How it is fitted in lme4: the term is declared as (1 | <name>) on a placeholder factor
## whose levels are exactly the union (it replaces the data column of that name in a copy;
## lme4's mkBlist drops unused levels, so the factor carries every level at least once;
## its row assignment is irrelevant), lFormula() builds
## the model, and the Zt rows of that term (one row per level, in level order) are replaced
## by t(Z_overlay).  Lambdat/Lind/theta/cnms/flist keep their shapes (one variance per term),
## then mkLmerDevfun -> optimizeLmer -> mkMerMod.  REML = TRUE throughout.
##
## Cases
##  hayman     agridat::hayman.tobacco, year 1951 (8x8 full diallel with selfs and
##             reciprocals, 2 blocks, 128 rows), response `day` (days to flowering).
##             day ~ 1, random male + and(female) (GCA) + comb (SCA, unordered pair)
##             + comb:dr (reciprocal effect: comb effect x dr, dr = -1 if male < female,
##             +1 if male > female, 0 for selfs; lme4 (0 + dr | comb)); block ignored.
##             Published (ASReml; agridat hayman.tobacco Rd, after Mohring, Melchinger &
##             Piepho 2011, Crop Sci 51:470-478): male 12.77, comb 11.11, comb:dr 0.6603,
##             residual 4.185, logL -212.6486 (ASReml convention).
##  lonnquist  agridat::lonnquist.maize, 6-parent subset p1, p2 in {M, H, G, B, K, K2}
##             (half diallel with selfs, 21 rows): yield ~ 1, random p1 + and(p2).
##             Published (agridat lonnquist.maize Rd, ASReml): p1 3.865, residual 15.93.
##  network_a  simulated (set.seed(17), written to overlay_network.csv): 6 trials x 250 trees,
##             40 parents, 40% open-pollinated (Father "0"), 2% selfs (Father == Mother).
##             y ~ Trial, random Trial:Block + Mother + and(Father).
##             Truth: y = trial mean + block (var 2) + GCA[Mother] + GCA[Father] (var 4)
##             + TP[trial, Mother] + TP[trial, Father] (var 1) + e (var 25); an unknown
##             father adds nothing; no SCA term.
##  network_b  as network_a plus Trial:Mother + and(Trial:Father): one Trial x parent effect
##             whichever role, on the union of (Trial, parent) pairs seen as Mother or Father.
##  network_c  as network_a with weight: Mother + and(Father, 0.5), i.e. Z = Z_M + 0.5 Z_F.
##
## logLik_REML_lme4 is lme4's REML logLik; logLik_REML_asreml_convention adds (n - p)/2 log(2 pi)
## (ASReml's logL omits that constant); logLik_REML_dense_check recomputes it from dense V.
suppressPackageStartupMessages({library(lme4); library(Matrix); library(jsonlite)})

## Z (n x L, dgCMatrix) of an overlay term: 1 for a, w for b, summed where a == b.
overlay_Z <- function(a, b, w = 1) {
  a <- as.character(a); b <- as.character(b)
  a[a %in% "0"] <- NA; b[b %in% "0"] <- NA
  lev <- sort(unique(c(a[!is.na(a)], b[!is.na(b)])))
  lev <- lev[order(nchar(lev), lev)]            # P2 before P10, G1..G8, M/H/... as text
  ia <- match(a, lev); ib <- match(b, lev); n <- length(a)
  sparseMatrix(i = c(which(!is.na(ia)), which(!is.na(ib))),
               j = c(ia[!is.na(ia)], ib[!is.na(ib)]),
               x = c(rep(1, sum(!is.na(ia))), rep(w, sum(!is.na(ib)))),   # duplicates are summed
               dims = c(n, length(lev)), dimnames = list(NULL, lev))
}

## Fit `formula` by REML where each (1 | name) with name in names(overlays) gets Z = overlays[[name]].
fit_overlay <- function(formula, data, overlays) {
  for (nm in names(overlays)) {
    lev <- colnames(overlays[[nm]])
    stopifnot(nrow(data) >= length(lev))
    data[[nm]] <- factor(rep_len(lev, nrow(data)), levels = lev)    # placeholder carrying every level
  }
  lf <- lFormula(formula, data = data, REML = TRUE)
  rt <- lf$reTrms
  for (nm in names(overlays)) {
    Z <- overlays[[nm]]
    k <- which(names(rt$cnms) == nm)
    stopifnot(length(k) == 1, identical(rt$cnms[[k]], "(Intercept)"),
              identical(levels(rt$flist[[nm]]), colnames(Z)))
    rows <- (rt$Gp[k] + 1):rt$Gp[k + 1]
    stopifnot(length(rows) == ncol(Z))
    rt$Zt[rows, ] <- t(Z)
    rt$Ztlist[[k]] <- as(t(Z), "CsparseMatrix")
  }
  rt$Zt <- as(rt$Zt, "CsparseMatrix")
  lf$reTrms <- rt
  devfun <- do.call(mkLmerDevfun, lf)
  opt <- optimizeLmer(devfun, optimizer = "bobyqa", control = list(rhobeg = 2e-4, rhoend = 2e-11, maxfun = 1e5))
  m <- mkMerMod(environment(devfun), opt, lf$reTrms, fr = lf$fr)
  ## cross-check the optimum with a second optimizer
  opt2 <- optimizeLmer(devfun, optimizer = "Nelder_Mead", control = list(FtolAbs = 1e-14, XtolRel = 1e-12, maxfun = 1e5))
  stopifnot(opt2$fval >= opt$fval - 1e-6)
  list(m = m, n = nrow(data), p = ncol(lf$X), Z = overlays, crosscheck_dev = opt2$fval, dev = opt$fval)
}

## Independent check: REML logLik from dense V = sum_k s2_k Z_k Z_k' + s2_e I at lme4's estimates.
dense_reml_ll <- function(f) {
  m <- f$m; y <- getME(m, "y"); X <- getME(m, "X"); n <- length(y); p <- ncol(X)
  Zt <- getME(m, "Zt"); lam <- getME(m, "Lambdat"); s2 <- sigma(m)^2
  ZL <- as.matrix(t(lam %*% Zt))                 # Z Lambda; V = s2 (Z Lambda Lambda' Z' + I)
  V <- s2 * (tcrossprod(ZL) + diag(n))
  Vi <- solve(V); XViX <- crossprod(X, Vi %*% X)
  P <- Vi - Vi %*% X %*% solve(XViX, crossprod(X, Vi))
  -0.5 * ((n - p) * log(2 * pi) + as.numeric(determinant(V)$modulus) +
          as.numeric(determinant(XViX)$modulus) + sum(y * (P %*% y)))
}

summarise <- function(f, model, ranef_show = NULL, published = NULL) {
  m <- f$m
  vc <- as.data.frame(VarCorr(m))
  grp <- sub("\\.[0-9]+$", "", vc$grp)      # lme4 names a second term on one factor "comb.1"
  nm <- ifelse(is.na(vc$var1) | vc$var1 == "(Intercept)", grp, paste0(grp, ":", vc$var1))
  stopifnot(!anyDuplicated(nm))
  v <- setNames(as.list(vc$vcov), nm)
  ll <- as.numeric(logLik(m))
  ll_dense <- dense_reml_ll(f)
  stopifnot(abs(ll - ll_dense) < 1e-6)
  re <- ranef(m)
  blup <- lapply(ranef_show, function(s) {
    r <- re[[s$term]]; col <- if (is.null(s$col)) "(Intercept)" else s$col
    lv <- if (is.null(s$levels)) rownames(r) else s$levels
    setNames(as.list(r[lv, col]), lv)
  })
  names(blup) <- vapply(ranef_show, function(s) if (is.null(s$col)) s$term else paste0(s$term, ":", s$col), "")
  c(list(model = model, n = f$n, p_fixed = f$p,
         overlay_levels = lapply(f$Z, colnames),
         variances = v, residual = sigma(m)^2,
         logLik_REML_lme4 = ll,
         logLik_REML_asreml_convention = ll + 0.5 * (f$n - f$p) * log(2 * pi),
         logLik_note = "asreml_convention = lme4 REML logLik + (n - p)/2 log(2 pi) (ASReml omits the constant)",
         logLik_REML_dense_check = ll_dense,
         REML_criterion = f$dev, REML_criterion_nelder_mead = f$crosscheck_dev,
         theta = as.list(getME(m, "theta")),
         fixef = as.list(fixef(m)), blup = blup),
    if (!is.null(published)) list(published = published))
}

res <- list(created = format(Sys.time(), tz = "UTC", usetz = TRUE),
            generator = sprintf("R %s.%s, lme4 %s, Matrix %s", R.version$major, R.version$minor,
                                packageVersion("lme4"), packageVersion("Matrix")),
            R_version = R.version.string, lme4_version = as.character(packageVersion("lme4")))

## ---- 1. hayman.tobacco 1951 -------------------------------------------------------------
h <- read.csv("tests/refdata/agridat_hayman.tobacco.csv", stringsAsFactors = FALSE)
h <- h[h$year == 1951, ]
stopifnot(nrow(h) == 128)
num <- function(g) as.integer(sub("^G", "", g))
h$comb <- factor(mapply(function(a, b) paste(sort(c(a, b)), collapse = "x"), h$male, h$female))
h$dr <- sign(num(h$male) - num(h$female))     # -1 male < female, +1 male > female, 0 self
Zh <- overlay_Z(h$male, h$female)
stopifnot(all(rowSums(Zh) == 2), sum(Zh == 2) == 16)   # 8 parents x 2 blocks of selfs
fh <- fit_overlay(day ~ 1 + (1 | male) + (1 | comb) + (0 + dr | comb), h, list(male = Zh))
res$hayman <- summarise(fh,
  "agridat hayman.tobacco, year 1951 (128 rows): day ~ 1, random male + and(female) [overlay GCA on G1..G8, selfs get 2] + comb [unordered pair, SCA] + comb:dr [(0 + dr | comb), dr = -1 male<female, +1 male>female, 0 self]; block ignored; REML",
  list(list(term = "male"), list(term = "comb", levels = c("G1xG1", "G1xG2", "G2xG8", "G7xG8")),
       list(term = "comb", col = "dr", levels = c("G1xG2", "G2xG8", "G7xG8"))),
  published = list(source = "agridat hayman.tobacco Rd (ASReml); Mohring, Melchinger & Piepho 2011 Crop Sci 51:470",
                   male = 12.77, comb = 11.11, comb_dr = 0.6603, residual = 4.185, logL_asreml = -212.6486))

## ---- 2. lonnquist.maize 6-parent subset ----------------------------------------------------
l <- read.csv("tests/refdata/agridat_lonnquist.maize.csv", stringsAsFactors = FALSE)
par6 <- c("M", "H", "G", "B", "K", "K2")
l <- l[l$p1 %in% par6 & l$p2 %in% par6, ]
stopifnot(nrow(l) == 21)
fl <- fit_overlay(yield ~ 1 + (1 | p1), l, list(p1 = overlay_Z(l$p1, l$p2)))
res$lonnquist <- summarise(fl,
  "agridat lonnquist.maize, parents {M,H,G,B,K,K2} (21 rows, half diallel with selfs): yield ~ 1, random p1 + and(p2) [overlay on the 6 parents, selfs get 2]; REML",
  list(list(term = "p1")),
  published = list(source = "agridat lonnquist.maize Rd (ASReml)", p1 = 3.865, residual = 15.93))

## ---- 3. simulated half-sib / full-sib network ----------------------------------------------
set.seed(17)
nT <- 6; nP <- 40; nTree <- 1500
P <- paste0("P", 1:nP); Tr <- paste0("T", 1:nT)
net <- data.frame(Tree = 1:nTree, Trial = rep(Tr, each = nTree / nT), stringsAsFactors = FALSE)
net$Block <- as.integer(unlist(lapply(1:nT, function(i) sample(rep(1:4, length.out = nTree / nT)))))
net$Mother <- sample(P, nTree, replace = TRUE)
u <- runif(nTree)
net$Father <- vapply(seq_len(nTree), function(i) {
  if (u[i] < 0.40) "0"                                  # open-pollinated: father unknown
  else if (u[i] < 0.42) net$Mother[i]                   # 2% selfs
  else sample(setdiff(P, net$Mother[i]), 1)             # a different parent
}, "")
gca <- setNames(rnorm(nP, 0, 2), P)                                        # var 4
tp <- matrix(rnorm(nT * nP, 0, 1), nT, nP, dimnames = list(Tr, P))         # var 1
blk <- matrix(rnorm(nT * 4, 0, sqrt(2)), nT, 4, dimnames = list(Tr, NULL)) # var 2
tmean <- setNames(c(50, 55, 48, 60, 52, 57), Tr)
fk <- net$Father != "0"
net$y <- tmean[net$Trial] + blk[cbind(match(net$Trial, Tr), net$Block)] + gca[net$Mother] + tp[cbind(net$Trial, net$Mother)] +
  ifelse(fk, gca[ifelse(fk, net$Father, P[1])] + tp[cbind(net$Trial, ifelse(fk, net$Father, P[1]))], 0) +
  rnorm(nTree, 0, 5)                                                       # var 25
net$y <- round(unname(net$y), 4)
write.csv(net, "tests/reference/overlay_network.csv", row.names = FALSE, quote = FALSE)
net <- read.csv("tests/reference/overlay_network.csv", stringsAsFactors = FALSE, colClasses = c(Father = "character"))
net$Trial <- factor(net$Trial); net$Block <- factor(net$Block)
truth <- list(gca = 4, trial_parent = 1, block = 2, residual = 25,
              note = "simulation truth: y = trial mean + block + GCA[M] + GCA[F] + TP[trial,M] + TP[trial,F] + e; unknown father (\"0\") adds nothing; no SCA")
Zg <- overlay_Z(net$Mother, net$Father)
stopifnot(ncol(Zg) == nP, all(rowSums(Zg) == 1 + (net$Father != "0")),
          all(apply(Zg[net$Father == net$Mother, , drop = FALSE], 1, max) == 2))
tm <- paste(net$Trial, net$Mother, sep = ":"); tf <- ifelse(net$Father == "0", "0", paste(net$Trial, net$Father, sep = ":"))
Ztp <- overlay_Z(tm, tf)
show_g <- list(list(term = "Mother", levels = c("P1", "P2", "P17", "P40")))
fa <- fit_overlay(y ~ Trial + (1 | Trial:Block) + (1 | Mother), net, list(Mother = Zg))
res$network_a <- summarise(fa,
  "overlay_network.csv (1500 trees): y ~ Trial, random Trial:Block + Mother + and(Father) [overlay GCA on P1..P40; Father \"0\" adds nothing; selfs get 2]; REML",
  show_g, published = list(simulation_truth = truth))
fb <- fit_overlay(y ~ Trial + (1 | Trial:Block) + (1 | Mother) + (1 | Trial_parent), net, list(Mother = Zg, Trial_parent = Ztp))
res$network_b <- summarise(fb,
  "overlay_network.csv: y ~ Trial, random Trial:Block + Mother + and(Father) + Trial:Mother + and(Trial:Father) [second overlay on the union of Trial:parent pairs seen as Mother or Father; levels 'T1:P1']; REML",
  c(show_g, list(list(term = "Trial_parent", levels = c("T1:P1", "T1:P2", "T6:P40")))),
  published = list(simulation_truth = truth))
fc <- fit_overlay(y ~ Trial + (1 | Trial:Block) + (1 | Mother), net, list(Mother = overlay_Z(net$Mother, net$Father, w = 0.5)))
res$network_c <- summarise(fc,
  "overlay_network.csv: y ~ Trial, random Trial:Block + Mother + and(Father, 0.5) [Z = Z_Mother + 0.5 Z_Father; selfs get 1.5]; REML",
  show_g, published = list(simulation_truth = truth))
res$network_data <- list(file = "tests/reference/overlay_network.csv", n = nrow(net),
                         n_father_unknown = sum(net$Father == "0"), n_self = sum(net$Father == net$Mother),
                         n_tp_levels = ncol(Ztp))

writeLines(toJSON(res, auto_unbox = TRUE, digits = NA, pretty = TRUE), "tests/reference/overlay.json")
