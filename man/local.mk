# man/ — man pages, paths substituted at make time from the .in sources.
man_MANS += man/fanoutd.8 man/fanout.ini.5

man/fanoutd.8: man/fanoutd.8.in Makefile
	$(AM_V_GEN)$(MKDIR_P) man && $(do_subst) < $(srcdir)/man/fanoutd.8.in > $@.tmp && mv $@.tmp $@
man/fanout.ini.5: man/fanout.ini.5.in Makefile
	$(AM_V_GEN)$(MKDIR_P) man && $(do_subst) < $(srcdir)/man/fanout.ini.5.in > $@.tmp && mv $@.tmp $@

CLEANFILES += man/fanoutd.8 man/fanout.ini.5
EXTRA_DIST += man/fanoutd.8.in man/fanout.ini.5.in
