# conf/cluster.mk — the multi-instance cluster (issue 4): the nginx load
# balancer configs, the compose demo (compose.yaml, Dockerfile), the
# loopback demo (scripts/demo.sh), the fresh-machine package list
# (scripts/install-deps.sh). Included from Makefile.am.
#
# Nothing here is installed: conf/nginx.conf and compose.yaml are used from
# the source tree (or copied into the images by the Dockerfile).

EXTRA_DIST += \
	conf/nginx.conf \
	conf/nginx-demo.conf.in \
	conf/fanout-compose.ini \
	compose.yaml \
	Dockerfile \
	.dockerignore \
	scripts/demo.sh \
	scripts/install-deps.sh

# Their tests: tests/integration/local.mk (cluster_*, config_validate.sh).

# `make demo` runs the loopback cluster from this build tree; stop it with
# Ctrl-C. DEMO_ARGS passes options, e.g. make demo DEMO_ARGS='--port 9000'.
demo: all
	BUILD_DIR='$(abs_top_builddir)' bash '$(abs_top_srcdir)/scripts/demo.sh' $(DEMO_ARGS)
.PHONY: demo
