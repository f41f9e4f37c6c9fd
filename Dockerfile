# The API image (and the migration job): Node 20, no model runtime needed beyond what npm installs.
FROM node:20-bookworm-slim
WORKDIR /app
COPY package.json package-lock.json ./
COPY prisma ./prisma
RUN npm ci --no-audit --no-fund
COPY . .
# production mode (Apollo, Express); set after npm ci so the install itself is unchanged
ENV NODE_ENV=production
ENV PORT=4000
EXPOSE 4000
CMD ["npm", "run", "api"]
