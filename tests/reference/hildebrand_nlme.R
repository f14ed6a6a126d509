# Independent check of agridat hildebrand.systems m2 (farm random, one residual variance per
# system) with nlme 3.1 (Debian r-cran-nlme), REML, tight tolerances.  Output:
# tests/reference/hildebrand_nlme.txt.  Run from the repository root:
#   Rscript tests/reference/hildebrand_nlme.R > tests/reference/hildebrand_nlme.txt
library(nlme)
d <- read.csv("tests/refdata/agridat_hildebrand.systems.csv")
d$system <- factor(d$system); d$farm <- factor(d$farm)
m <- lme(yield ~ system, random = ~1|farm, weights = varIdent(form = ~1|system), data = d,
         method = "REML",
         control = lmeControl(msMaxIter = 500, msTol = 1e-12, tolerance = 1e-12, niterEM = 100))
cat("nlme", as.character(packageVersion("nlme")), "\n")
cat(sprintf("logLik_REML %.10f\n", as.numeric(logLik(m))))
cat(sprintf("farm %.10g\n", as.numeric(VarCorr(m)[1, 1])))
w <- coef(m$modelStruct$varStruct, unconstrained = FALSE, allCoef = TRUE)
for (s in names(w)) cat(sprintf("%s %.10g\n", s, (m$sigma * w[[s]])^2))
