# Dockerfile — fanout images for compose.yaml, built with the project's own
# autotools build on Debian 12.
#
#   build    all build dependencies; autoreconf + configure + make install
#            into /out (DESTDIR)
#   lb       nginx (Debian's 1.22, the version the tests check
#            conf/nginx.conf with) + the installed web page
#   runtime  (default target) fanoutd, fanout-cli and the plugins with only
#            their runtime libraries; runs as an unprivileged user
#
#   docker build -t fanout .            # runtime image
#   docker build --target lb -t fanout-lb .

FROM debian:12 AS build
ENV DEBIAN_FRONTEND=noninteractive
RUN apt-get update \
 && apt-get install -y --no-install-recommends \
      build-essential pkg-config autoconf automake libtool autoconf-archive \
      libwebsockets-dev libhiredis-dev libinih-dev libjansson-dev ca-certificates \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
RUN autoreconf -fi \
 && ./configure --prefix=/usr --sysconfdir=/etc \
 && make -j"$(nproc)" \
 && make install DESTDIR=/out \
 && install -m 0644 conf/fanout-compose.ini /out/etc/fanout/compose.ini \
 && find /out -name '*.la' -delete

FROM debian:12-slim AS lb
ENV DEBIAN_FRONTEND=noninteractive
RUN apt-get update \
 && apt-get install -y --no-install-recommends nginx curl ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && ln -sf /dev/stdout /var/log/nginx/access.log \
 && ln -sf /dev/stderr /var/log/nginx/error.log
COPY conf/nginx.conf /etc/nginx/nginx.conf
COPY --from=build /out/usr/share/fanout/web /usr/share/fanout/web
EXPOSE 80
STOPSIGNAL SIGQUIT
CMD ["nginx", "-g", "daemon off;"]

FROM debian:12-slim AS runtime
ENV DEBIAN_FRONTEND=noninteractive
RUN apt-get update \
 && apt-get install -y --no-install-recommends \
      libwebsockets17 libhiredis0.14 libinih1 libjansson4 curl ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --no-create-home --shell /usr/sbin/nologin fanout
COPY --from=build /out/ /
USER fanout
EXPOSE 8080
STOPSIGNAL SIGTERM
HEALTHCHECK --interval=5s --timeout=2s --retries=3 \
  CMD curl -fsS -o /dev/null http://127.0.0.1:8080/readyz || exit 1
CMD ["fanoutd", "-c", "/etc/fanout/fanout.ini"]
