# tests/loader/ — broken plugins the plugin host must refuse (one source,
# one .so per defect), and the test that runs fanoutd against each.
LOADER_LINK = -module -avoid-version -shared -rpath $(abs_builddir)/tests/loader $(SAN_CFLAGS)
check_LTLIBRARIES += tests/loader/bad_major.la tests/loader/bad_minor.la \
	tests/loader/bad_nosym.la tests/loader/bad_nullop.la \
	tests/loader/bad_initfail.la tests/loader/bad_startfail.la tests/loader/bad_oldminor.la \
	tests/loader/bad_badopts.la tests/loader/bad_options.la
tests_loader_bad_major_la_SOURCES = tests/loader/bad_plugin.c
tests_loader_bad_major_la_CPPFLAGS = $(AM_CPPFLAGS) -DBAD_KIND=1
tests_loader_bad_major_la_LDFLAGS = $(LOADER_LINK)
tests_loader_bad_minor_la_SOURCES = tests/loader/bad_plugin.c
tests_loader_bad_minor_la_CPPFLAGS = $(AM_CPPFLAGS) -DBAD_KIND=2
tests_loader_bad_minor_la_LDFLAGS = $(LOADER_LINK)
tests_loader_bad_nosym_la_SOURCES = tests/loader/bad_plugin.c
tests_loader_bad_nosym_la_CPPFLAGS = $(AM_CPPFLAGS) -DBAD_KIND=3
tests_loader_bad_nosym_la_LDFLAGS = $(LOADER_LINK)
tests_loader_bad_nullop_la_SOURCES = tests/loader/bad_plugin.c
tests_loader_bad_nullop_la_CPPFLAGS = $(AM_CPPFLAGS) -DBAD_KIND=4
tests_loader_bad_nullop_la_LDFLAGS = $(LOADER_LINK)
tests_loader_bad_initfail_la_SOURCES = tests/loader/bad_plugin.c
tests_loader_bad_initfail_la_CPPFLAGS = $(AM_CPPFLAGS) -DBAD_KIND=5
tests_loader_bad_initfail_la_LDFLAGS = $(LOADER_LINK)
tests_loader_bad_startfail_la_SOURCES = tests/loader/bad_plugin.c
tests_loader_bad_startfail_la_CPPFLAGS = $(AM_CPPFLAGS) -DBAD_KIND=6
tests_loader_bad_startfail_la_LDFLAGS = $(LOADER_LINK)
tests_loader_bad_oldminor_la_SOURCES = tests/loader/bad_plugin.c
tests_loader_bad_oldminor_la_CPPFLAGS = $(AM_CPPFLAGS) -DBAD_KIND=7
tests_loader_bad_oldminor_la_LDFLAGS = $(LOADER_LINK)
tests_loader_bad_badopts_la_SOURCES = tests/loader/bad_plugin.c
tests_loader_bad_badopts_la_CPPFLAGS = $(AM_CPPFLAGS) -DBAD_KIND=8
tests_loader_bad_badopts_la_LDFLAGS = $(LOADER_LINK)
tests_loader_bad_options_la_SOURCES = tests/loader/bad_plugin.c
tests_loader_bad_options_la_CPPFLAGS = $(AM_CPPFLAGS) -DBAD_KIND=9
tests_loader_bad_options_la_LDFLAGS = $(LOADER_LINK)

TESTS += tests/loader/loader.mjs
EXTRA_DIST += tests/loader/loader.mjs
