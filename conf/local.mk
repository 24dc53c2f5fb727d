# conf/ — default config and the nginx load-balancer config.
#
# conf/fanout.ini is the documented default config with @pkgdatadir@ and
# @pkglibdir@ placeholders; it is substituted at make time into
# conf/installed/fanout.ini (a built file in its own folder, so it installs
# under its plain name without an install hook) and installed as
# $(sysconfdir)/fanout/fanout.ini. conf/examples/ ship in the tarball and
# under $(pkgdatadir)/examples.
fanoutconfdir = $(sysconfdir)/fanout
fanoutconf_DATA = conf/installed/fanout.ini

conf/installed/fanout.ini: conf/fanout.ini Makefile
	$(AM_V_GEN)$(MKDIR_P) conf/installed && \
	$(do_subst) < $(srcdir)/conf/fanout.ini > $@.tmp && mv $@.tmp $@

fanoutexamplesdir = $(pkgdatadir)/examples
dist_fanoutexamples_DATA = \
	conf/examples/loopback.ini \
	conf/examples/cluster.ini \
	conf/examples/routing.ini \
	conf/examples/nats.ini

CLEANFILES += conf/installed/fanout.ini
EXTRA_DIST += conf/fanout.ini
