# The reference proxies for `npm run bench`: the same nginx base image as ours, its stock nginx.conf,
# and one site configuration (CONF: naive-proxy.conf or tuned-proxy.conf). Bench only; never shipped.
ARG NGINX_IMAGE=nginx:1.30
FROM ${NGINX_IMAGE}
ARG CONF=naive-proxy.conf
# The whole site configuration: any stock default site is removed so this server is the only one.
RUN rm -f /etc/nginx/conf.d/*.conf /etc/nginx/sites-enabled/*
COPY ${CONF} /etc/nginx/conf.d/default.conf
EXPOSE 80
STOPSIGNAL SIGQUIT
CMD ["nginx", "-g", "daemon off;"]
