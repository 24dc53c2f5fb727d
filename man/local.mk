# man/ — man pages, paths substituted at make time from the .in sources.
man_MANS += man/fanoutd.8 man/fanout.ini.5

man/fanoutd.8: man/fanoutd.8.in Makefile
	$(AM_V_GEN)$(MKDIR_P) man && $(do_subst) < $(srcdir)/man/fanoutd.8.in > $@.tmp && mv $@.tmp $@
man/fanout.ini.5: man/fanout.ini.5.in Makefile
	$(AM_V_GEN)$(MKDIR_P) man && $(do_subst) < $(srcdir)/man/fanout.ini.5.in > $@.tmp && mv $@.tmp $@

CLEANFILES += man/fanoutd.8 man/fanout.ini.5

# A backend's man page gets its option list from the built plugin: the line
# @PLUGIN_OPTIONS@ of its .5.in is replaced by the plugin's option table
# (man/plugin_options.c, core/contract.c). A plugin's local.mk renders its
# page with
#   $(do_subst) < PAGE.5.in > $@.sub && $(PLUGIN_MAN) path/.libs/NAME.so $@.sub > $@
# and lists $(PLUGIN_OPTIONS) and its .la among the page's prerequisites.
noinst_PROGRAMS += man/plugin-options
man_plugin_options_SOURCES = man/plugin_options.c
man_plugin_options_LDADD = core/libfanoutcore.a $(DL_LIBS)
PLUGIN_OPTIONS = man/plugin-options$(EXEEXT)
# In an ASan build the helper is instrumented; what dlopen keeps is no leak.
PLUGIN_MAN = ASAN_OPTIONS=detect_leaks=0 $(top_builddir)/man/plugin-options
EXTRA_DIST += man/fanoutd.8.in man/fanout.ini.5.in
