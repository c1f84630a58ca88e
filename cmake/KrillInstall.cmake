# install rules: written by the build helper
