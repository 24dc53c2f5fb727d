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
	conf/examples/nats.ini \
	conf/examples/valkey-cluster.ini

CLEANFILES += conf/installed/fanout.ini
EXTRA_DIST += conf/fanout.ini

# fanoutd.service: installed where configure found (or was told) the
# systemd unit directory; @SYSTEMD_TYPE@ is notify (built with libsystemd)
# or exec, and the watchdog line is kept only with notify.
if HAVE_SYSTEMD_UNITDIR
systemdsystemunit_DATA = conf/fanoutd.service
endif
noinst_DATA += conf/fanoutd.service
conf/fanoutd.service: conf/fanoutd.service.in Makefile
	$(AM_V_GEN)$(MKDIR_P) conf && $(do_subst) -e 's|@SYSTEMD_TYPE[@]|$(SYSTEMD_TYPE)|g' \
		-e 's|^@WATCHDOG[@]|$(SYSTEMD_WATCHDOG)|' \
		< $(srcdir)/conf/fanoutd.service.in > $@.tmp && mv $@.tmp $@
CLEANFILES += conf/fanoutd.service
EXTRA_DIST += conf/fanoutd.service.in

# The Grafana dashboard over /metrics, installed for import
# ($(pkgdatadir)/grafana/fanout.json).
grafanadir = $(pkgdatadir)/grafana
dist_grafana_DATA = conf/grafana/fanout.json
