# tests/package/ — the Debian package (debian/), built from `make distdir`
# in a scratch directory, installed, used and purged by deb.sh (TAP).
# Not part of `make check` (installs system-wide, root, ~2 min):
# `make check-package`, and scripts/test.sh in the full run (CI).
EXTRA_DIST += debian tests/package/deb.sh

check-package: all
	FANOUT_SRCDIR='$(abs_top_srcdir)' FANOUT_BUILDDIR='$(abs_top_builddir)' \
	REDIS_SERVER='$(REDIS_SERVER)' REDIS_CLI='$(REDIS_CLI)' \
	$(SHELL) $(top_srcdir)/tests/package/deb.sh
.PHONY: check-package

# make deb: the two .debs into deb/ of the build tree, built from a copy of
# the distribution (never in the source tree, which dpkg-buildpackage would
# configure in place).
deb: distdir
	rm -rf deb && $(MKDIR_P) deb && mv $(distdir) deb/fanout && \
	cp -r $(srcdir)/debian deb/fanout/ && \
	(cd deb/fanout && DEB_BUILD_OPTIONS="nocheck noddebs" dpkg-buildpackage -us -uc -b) && \
	rm -rf deb/fanout && ls deb/*.deb
.PHONY: deb
clean-local: clean-local-deb
clean-local-deb:
	-rm -rf deb
.PHONY: clean-local-deb
